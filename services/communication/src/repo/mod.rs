//! All SQL of communication-service, one module per resource. Every function takes the
//! caller's tenant-scoped transaction ([`crm_tenant::TenantTx`]: unqualified table names
//! follow its schema) and returns [`crm_tenant::DbError`]; columns are always listed.

pub mod activities;
pub mod attachments;
pub mod emails;
pub mod notes;
pub mod references;
pub mod reminders;
pub mod reports;
pub mod rules;
pub mod sequences;
pub mod tasks;
pub mod templates;
pub mod timeline;
pub mod webhooks;
pub mod unsubscribes;

use chrono::{DateTime, Utc};
use crm_client_communication::CustomFields;
use serde::{Deserialize, Serialize};

fn fields(value: serde_json::Value) -> CustomFields {
    match value {
        serde_json::Value::Object(map) => map,
        _ => CustomFields::new(),
    }
}

/// Sort direction spliced into SQL (from a whitelist, never from input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dir {
    Asc,
    Desc,
}

impl Dir {
    fn sql(self) -> &'static str {
        match self {
            Self::Asc => "ASC",
            Self::Desc => "DESC",
        }
    }

    fn cmp(self) -> &'static str {
        match self {
            Self::Asc => ">",
            Self::Desc => "<",
        }
    }
}

/// Keyset position after the last row of a page: the sort value and the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort the cursor was made for (a cursor of another sort is refused).
    pub sort: String,
    pub at: DateTime<Utc>,
    pub id: i32,
}

/// A page of rows with the keyset value of each.
pub struct Keyed<T> {
    pub row: T,
    pub at: DateTime<Utc>,
}

/// Who may see email content (the one rule of every path showing an email or an activity of
/// type `email`; see `crate::service::email_visibility`): `all` CRM emails, or only those of
/// `user` (sent by the user, or logged as an activity the user owns or created); `system`
/// emails (invitations, password resets) only with `system`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailVisibility {
    pub all: bool,
    pub user: Option<i32>,
    pub system: bool,
}

/// SQL condition: the activity `a` is visible (anything but an email, or an email of the
/// rule). `$all` (bool) and `$user` (int) are the parameter numbers of
/// [`EmailVisibility::all`] and [`EmailVisibility::user`].
pub fn activity_visible(a: &str, all: usize, user: usize) -> String {
    format!(
        "({a}.type <> 'email' OR ${all}::bool OR {a}.owner_id = ${user}::int OR {a}.created_by = ${user}::int \
         OR EXISTS (SELECT 1 FROM email_tracking ev WHERE ev.activity_id = {a}.id AND ev.sender_id = ${user}::int))"
    )
}

/// SQL condition: the email (tracking row) `e` is visible: a CRM email of the rule (sent by
/// `$user`, or logged as an activity `$user` owns or created), or a system email with
/// `$system`.
pub fn email_visible(e: &str, all: usize, user: usize, system: usize) -> String {
    format!(
        "(CASE WHEN {e}.kind = 'crm' THEN (${all}::bool OR {e}.sender_id = ${user}::int \
              OR EXISTS (SELECT 1 FROM activities av WHERE av.id = {e}.activity_id AND (av.owner_id = ${user}::int OR av.created_by = ${user}::int))) \
          ELSE ${system}::bool END)"
    )
}
