//! All SQL of communication-service, one module per resource. Every function takes the
//! caller's tenant-scoped transaction ([`crm_tenant::TenantTx`]: unqualified table names
//! follow its schema) and returns [`crm_tenant::DbError`]; columns are always listed.

pub mod activities;
pub mod emails;
pub mod reports;
pub mod tasks;
pub mod templates;
pub mod timeline;

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
