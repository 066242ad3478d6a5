//! HTTP handlers: parse, authorize, call the repository inside one transaction, answer.

pub mod activities;
pub mod emails;
pub mod reports;
pub mod tasks;
pub mod templates;

use crm_events::{Envelope, enqueue};
use crm_tenant::TenantTx;
use crm_web::pagination::SortDir;
use crm_web::{ApiError, CursorCodec, FieldErrors, codes};
use serde::Serialize;

use crate::repo::{Cursor, Dir};

pub use crm_web::Forward;

pub use crm_web::QueryParams as Params;

/// `?sort=` from a whitelist (`-` for descending) plus `?cursor=` made for that same sort.
pub fn sort_and_cursor(
    params: &Params,
    errors: &mut FieldErrors,
    cursors: &CursorCodec,
    allowed: &[&'static str],
    default: (&'static str, SortDir),
) -> Result<(&'static str, Dir, Option<Cursor>), ApiError> {
    let (field, dir) = match crm_web::pagination::parse_sort(params.one("sort"), allowed, default) {
        Ok(sort) => sort,
        Err(_) => {
            errors.add("sort", format!("must be one of: {} (prefix - for descending)", allowed.join(", ")));
            default
        }
    };
    let dir = match dir {
        SortDir::Asc => Dir::Asc,
        SortDir::Desc => Dir::Desc,
    };
    let key = sort_key(field, dir);
    let cursor: Option<Cursor> = crm_web::pagination::parse_cursor(cursors, params.one("cursor"))?;
    if cursor.as_ref().is_some_and(|c| c.sort != key) {
        return Err(ApiError::new(axum::http::StatusCode::BAD_REQUEST, codes::INVALID_CURSOR, "the cursor belongs to another sort"));
    }
    Ok((field, dir, cursor))
}

pub fn sort_key(field: &str, dir: Dir) -> String {
    match dir {
        Dir::Asc => field.to_owned(),
        Dir::Desc => format!("-{field}"),
    }
}

/// Writes an event into the outbox of the request's transaction.
pub async fn publish(tx: &TenantTx<'_>, event_type: &str, actor: Option<i32>, data: impl Serialize) -> Result<(), ApiError> {
    let event = Envelope::new(event_type, tx.tenant_id(), actor.map(|a| a.to_string()), data).map_err(ApiError::internal)?;
    enqueue(tx, &event).await?;
    Ok(())
}

/// A path id: anything but a positive integer is "not found" (no hint about valid ids).
pub fn path_id(raw: &str, what: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::not_found(what))
}

/// 202 Accepted with a JSON body (`POST /emails`: delivery continues after the response).
pub struct Accepted<T>(pub T);

impl<T: Serialize> axum::response::IntoResponse for Accepted<T> {
    fn into_response(self) -> axum::response::Response {
        (axum::http::StatusCode::ACCEPTED, axum::Json(self.0)).into_response()
    }
}
