//! Tag management (issue 16, seed 003): rename, merge and delete a tag across every contact
//! and company of the tenant, in ONE transaction. Each changed record publishes its usual
//! `contact.updated` / `company.updated` event (so caches, webhooks and the audit log see the
//! change like any other edit) and gets a new `updated_at` (its ETag changes).
//!
//! Who: roles that may change every contact and every company (`contacts: write` with scope
//! `all` and `companies: write`: admins and managers); a sales rep, who changes only its own
//! contacts, cannot rewrite everyone's tags.

use crm_client_contact::subjects::{COMPANY_UPDATED, CONTACT_UPDATED};
use crm_events::publish;
use crm_web::{Action, ApiError, Can, FieldErrors, Resource, Scope, perm};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::domain::{MAX_TAG_LEN, MAX_TAGS};
use crate::repo::tags as repo;

/// Body of `POST /tags/rename`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRename {
    pub from: String,
    /// When a record already has `to`, the two become one.
    pub to: String,
}

/// Body of `POST /tags/merge`: every `from` tag becomes `to`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagMerge {
    /// 1 to 20 tags.
    pub from: Vec<String>,
    pub to: String,
}

/// What a rename, merge or delete changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TagChange {
    /// The tags replaced or deleted (normalized).
    pub from: Vec<String>,
    /// The tag they became (`null` for a delete).
    pub to: Option<String>,
    /// Ids of the contacts and companies changed.
    pub contacts: Vec<i32>,
    pub companies: Vec<i32>,
}

/// A tag as stored: trimmed, lowercase, 1 to 50 characters, no comma or control character
/// (the rule of `domain::tags`).
fn tag(errors: &mut FieldErrors, field: &str, raw: &str) -> String {
    let t = raw.trim().to_lowercase();
    if t.is_empty() || t.chars().count() > MAX_TAG_LEN || t.contains(',') || t.chars().any(char::is_control) {
        errors.add(field, format!("a tag has 1 to {MAX_TAG_LEN} characters and no comma"));
    }
    t
}

fn ensure_everywhere(can: &Can<perm::ContactsWrite>) -> Result<(), ApiError> {
    if can.scope != Scope::All {
        return Err(ApiError::forbidden("changing tags across all records needs write access to every contact"));
    }
    can.require(Resource::Companies, Action::Write)?;
    Ok(())
}

/// Replaces `from` by `to` (or removes them) on every record: 404 when no record carries any.
async fn replace(state: &AppState, can: &Can<perm::ContactsWrite>, from: Vec<String>, to: Option<String>) -> Result<TagChange, ApiError> {
    ensure_everywhere(can)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let contacts = repo::replace_on_contacts(&tx, &from, to.as_deref()).await?;
    let companies = repo::replace_on_companies(&tx, &from, to.as_deref()).await?;
    if contacts.is_empty() && companies.is_empty() {
        return Err(ApiError::not_found("tag"));
    }
    for c in &contacts {
        publish(&tx, Some(can.user_id), CONTACT_UPDATED, c).await?;
    }
    for c in &companies {
        publish(&tx, Some(can.user_id), COMPANY_UPDATED, c).await?;
    }
    tx.commit().await?;
    Ok(TagChange { from, to, contacts: contacts.iter().map(|c| c.id).collect(), companies: companies.iter().map(|c| c.id).collect() })
}

/// `POST /tags/rename`.
pub async fn rename(state: &AppState, can: &Can<perm::ContactsWrite>, input: TagRename) -> Result<TagChange, ApiError> {
    let mut errors = FieldErrors::new();
    let from = tag(&mut errors, "from", &input.from);
    let to = tag(&mut errors, "to", &input.to);
    if errors.is_empty() && from == to {
        errors.add("to", "is the same tag as from");
    }
    errors.into_result()?;
    replace(state, can, vec![from], Some(to)).await
}

/// `POST /tags/merge`.
pub async fn merge(state: &AppState, can: &Can<perm::ContactsWrite>, input: TagMerge) -> Result<TagChange, ApiError> {
    let mut errors = FieldErrors::new();
    let to = tag(&mut errors, "to", &input.to);
    let mut from: Vec<String> = input.from.iter().enumerate().map(|(i, t)| tag(&mut errors, &format!("from[{i}]"), t)).collect();
    from.sort();
    from.dedup();
    from.retain(|t| *t != to);
    if from.is_empty() {
        errors.add("from", "at least one tag other than `to`");
    } else if from.len() > MAX_TAGS {
        errors.add("from", format!("at most {MAX_TAGS} tags"));
    }
    errors.into_result()?;
    replace(state, can, from, Some(to)).await
}

/// `DELETE /tags/{tag}`: removed from every record.
pub async fn delete(state: &AppState, can: &Can<perm::ContactsWrite>, raw: &str) -> Result<TagChange, ApiError> {
    let mut errors = FieldErrors::new();
    let t = tag(&mut errors, "tag", raw);
    errors.into_result()?;
    replace(state, can, vec![t], None).await
}
