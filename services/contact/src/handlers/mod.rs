//! HTTP handlers: parse, authorize, call the repository inside one transaction, answer.

pub mod companies;
pub mod contacts;
pub mod transfer;

use crm_events::{Envelope, enqueue};
use crm_tenant::TenantTx;
use crm_web::{ApiError, AuthUser, CursorCodec, FieldErrors, codes};
use serde::Serialize;
use tokio_postgres::error::SqlState;

use crate::repo::ListCursor;

pub use crm_web::Forward;

pub use crm_web::QueryParams as Params;

/// `?tag=` (repeatable, all must match): lowercased, each 1 to 50 characters, at most 20.
pub fn tags(params: &Params, errors: &mut FieldErrors) -> Vec<String> {
    let tags: Vec<String> = params.all("tag").iter().map(|t| t.trim().to_lowercase()).collect();
    if tags.len() > crate::domain::MAX_TAGS || tags.iter().any(|t| t.is_empty() || t.chars().count() > crate::domain::MAX_TAG_LEN) {
        errors.add("tag", "each tag must have 1 to 50 characters (at most 20 tags)");
    }
    tags
}

/// Ids in paths: one that cannot exist is simply not found.
pub fn parse_id(raw: &str, what: &str) -> Result<i32, ApiError> {
    match raw.parse::<i32>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::not_found(what)),
    }
}

/// `?sort=` from the whitelist: (field, descending).
pub fn parse_sort(raw: Option<&str>, allowed: &[&'static str], default: (&'static str, bool)) -> Result<(&'static str, bool), ApiError> {
    use crm_web::pagination::SortDir;
    let dir = if default.1 { SortDir::Desc } else { SortDir::Asc };
    let (field, dir) = crm_web::pagination::parse_sort(raw, allowed, (default.0, dir))?;
    Ok((field, dir == SortDir::Desc))
}

/// The cursor of a list, which must have been made for the same order.
pub fn parse_list_cursor(codec: &CursorCodec, raw: Option<&str>, key: &str, desc: bool) -> Result<Option<ListCursor>, ApiError> {
    let cursor: Option<ListCursor> = crm_web::pagination::parse_cursor(codec, raw)?;
    match cursor {
        Some(c) if c.k != key || c.desc != desc => {
            Err(ApiError::new(axum::http::StatusCode::BAD_REQUEST, codes::INVALID_CURSOR, "the cursor belongs to another sort order"))
        }
        other => Ok(other),
    }
}

/// Writes an event into the tenant's outbox, in the request's transaction.
pub async fn publish(tx: &TenantTx<'_>, event_type: &str, user: &AuthUser, data: impl Serialize) -> Result<(), ApiError> {
    let event = Envelope::new(event_type, &user.tenant_id, Some(user.user_id.to_string()), data).map_err(ApiError::internal)?;
    enqueue(tx, &event).await?;
    Ok(())
}

pub fn email_taken() -> ApiError {
    ApiError::conflict("EMAIL_TAKEN", "a contact with this email already exists")
        .with_details(serde_json::json!({"fields": {"email": "already used by another contact"}}))
}

/// A unique violation on the email index is a 409 `EMAIL_TAKEN` (a concurrent writer won).
pub fn on_email_conflict(e: tokio_postgres::Error) -> ApiError {
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some("contacts_email_key") => email_taken(),
        _ => e.into(),
    }
}

/// 422 `REFERENCE_NOT_FOUND` naming the field.
pub fn missing_reference(field: &str, what: &str) -> ApiError {
    ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, format!("{field}: no such {what} in this tenant"))
        .with_details(serde_json::json!({"fields": {field: format!("no such {what}")}}))
}
