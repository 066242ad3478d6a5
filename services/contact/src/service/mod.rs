//! The use cases of contact-service, one module per resource: rules, scope checks on rows,
//! ONE tenant transaction per call, repository calls, events (outbox, same transaction) and
//! calls to auth-service. Functions take the [`AppState`](crate::AppState), the caller with
//! the permission proven in the handler's signature (`&Can<perm::X>`), and parsed input;
//! they return `Result<T, ApiError>`.

pub mod companies;
pub mod consent;
pub mod contacts;
pub mod custom_fields;
pub mod merge;
pub mod scoring;
pub mod tags;
pub mod engagement;
mod owners;
pub mod transfer;
pub mod trash;

use axum::http::StatusCode;
use crm_tenant::DbError;
use crm_web::{ApiError, CursorCodec, FieldErrors, QueryParams, codes};
use tokio_postgres::error::SqlState;

use crate::domain::{MAX_TAG_LEN, MAX_TAGS};
use crate::repo::ListCursor;

/// `?tag=` (repeatable, all must match): lowercased, each 1 to 50 characters, at most 20.
fn tag_filter(params: &QueryParams, errors: &mut FieldErrors) -> Vec<String> {
    let tags: Vec<String> = params.all("tag").iter().map(|t| t.trim().to_lowercase()).collect();
    if tags.len() > MAX_TAGS || tags.iter().any(|t| t.is_empty() || t.chars().count() > MAX_TAG_LEN) {
        errors.add("tag", "each tag must have 1 to 50 characters (at most 20 tags)");
    }
    tags
}

/// `?sort=` from the whitelist: (field, descending).
fn parse_sort(raw: Option<&str>, allowed: &[&'static str], default: (&'static str, bool)) -> Result<(&'static str, bool), ApiError> {
    use crm_web::pagination::SortDir;
    let dir = if default.1 { SortDir::Desc } else { SortDir::Asc };
    let (field, dir) = crm_web::pagination::parse_sort(raw, allowed, (default.0, dir))?;
    Ok((field, dir == SortDir::Desc))
}

/// Lists with one fixed order accept no `?sort=` but their own order (400 otherwise, like
/// any sort outside a whitelist).
fn fixed_order(params: &QueryParams, order: &'static str) -> Result<(), ApiError> {
    match params.one("sort").map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) if raw != order => Err(ApiError::validation([("sort", format!("this list has one order: {order}"))])),
        _ => Ok(()),
    }
}

/// The cursor of a list, which must have been made for the same order.
fn parse_list_cursor(codec: &CursorCodec, raw: Option<&str>, key: &str, desc: bool) -> Result<Option<ListCursor>, ApiError> {
    let cursor: Option<ListCursor> = crm_web::pagination::parse_cursor(codec, raw)?;
    match cursor {
        Some(c) if c.k != key || c.desc != desc => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_CURSOR, "the cursor belongs to another sort order"))
        }
        other => Ok(other),
    }
}

/// 409 `EMAIL_TAKEN`.
fn email_taken() -> ApiError {
    ApiError::conflict(codes::EMAIL_TAKEN, "a contact with this email already exists")
        .with_details(serde_json::json!({"fields": {"email": "already used by another contact"}}))
}

/// A unique violation on the email index is a 409 `EMAIL_TAKEN` (a concurrent writer won).
fn on_email_conflict(e: DbError) -> ApiError {
    match &e {
        DbError::Query(q) => match q.as_db_error() {
            Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some("contacts_email_key") => email_taken(),
            _ => e.into(),
        },
        _ => e.into(),
    }
}

/// 422 `REFERENCE_NOT_FOUND` naming the field.
fn missing_reference(field: &str, what: &str) -> ApiError {
    ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, format!("{field}: no such {what} in this tenant"))
        .with_details(serde_json::json!({"fields": {field: format!("no such {what}")}}))
}
