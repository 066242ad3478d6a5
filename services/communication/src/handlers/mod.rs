//! HTTP handlers: parse, authorize, call the repository inside one transaction, answer.

pub mod activities;
pub mod emails;
pub mod reports;
pub mod tasks;
pub mod templates;

use chrono::{DateTime, Utc};
use crm_events::{Envelope, enqueue};
use crm_tenant::TenantTx;
use crm_web::pagination::SortDir;
use crm_web::{ApiError, CursorCodec, FieldErrors, codes};
use serde::Serialize;

use crate::repo::{Cursor, Dir};

pub use crm_web::Forward;

/// The query string as pairs: every value is parsed by hand into field errors, so bad input
/// is a 400 listing every bad parameter.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn one(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).flat_map(|(_, v)| v.split(',')).map(str::trim).filter(|v| !v.is_empty()).collect()
    }

    pub fn id(&self, errors: &mut FieldErrors, key: &str) -> Option<i32> {
        let raw = self.one(key)?;
        match raw.trim().parse::<i32>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                errors.add(key, "must be a positive integer id");
                None
            }
        }
    }

    pub fn time(&self, errors: &mut FieldErrors, key: &str) -> Option<DateTime<Utc>> {
        let raw = self.one(key)?;
        match DateTime::parse_from_rfc3339(raw.trim()) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.add(key, "must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z");
                None
            }
        }
    }

    pub fn flag(&self, errors: &mut FieldErrors, key: &str) -> Option<bool> {
        match self.one(key)? {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => {
                errors.add(key, "must be true or false");
                None
            }
        }
    }

    pub fn choice(&self, errors: &mut FieldErrors, key: &str, allowed: &[&str]) -> Option<String> {
        let raw = self.one(key)?.trim().to_ascii_lowercase();
        crate::domain::one_of(errors, key, &raw, allowed);
        Some(raw)
    }

    pub fn count(&self) -> bool {
        self.one("count") != Some("false")
    }
}

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
