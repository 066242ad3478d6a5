//! Optimistic concurrency (RFC 9110 §8.8.3, §13.1.1): every single resource is answered with
//! an `ETag`; a `PUT`/`PATCH`/`DELETE` carrying `If-Match` is refused with 412
//! `PRECONDITION_FAILED` when the record changed since that tag was read. Writes without
//! `If-Match` keep working (last write wins, as before).
//!
//! The tag is the record's version: its `updated_at` to the microsecond (PostgreSQL's
//! precision), so enrichment (names looked up in other services) does not change it. The
//! service compares inside its transaction, after reading the row `FOR UPDATE`, so no write
//! can slip in between the check and the update.
//!
//! ```ignore
//! async fn patch(.., if_match: IfMatch, ..) -> Result<Tagged<Deal>, ApiError> {
//!     let current = repo::deal_for_update(&tx, id).await?...;
//!     if_match.check(&ETag::of(current.updated_at))?;
//!     ...
//!     Ok(Tagged::new(ETag::of(updated.updated_at), updated))
//! }
//! ```

use axum::extract::FromRequestParts;
use axum::http::header::{ETAG, IF_MATCH};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{ApiError, codes};

/// A strong entity tag, as sent in `ETag` (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ETag(String);

impl ETag {
    /// The tag of a record last changed at `updated_at`.
    pub fn of(updated_at: DateTime<Utc>) -> Self {
        Self(format!("\"{}\"", updated_at.timestamp_micros()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `If-Match` precondition of a request: `None` when the header is absent.
#[derive(Debug, Clone, Default)]
pub struct IfMatch(Option<Vec<String>>);

impl IfMatch {
    /// A precondition naming these tags (tests, non-HTTP callers).
    pub fn tags(tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(Some(tags.into_iter().map(Into::into).collect()))
    }

    /// Whether the header was sent.
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }

    /// `Ok` without `If-Match`, with `*`, or when one listed tag is `current` (strong
    /// comparison: a weak `W/` tag never matches); else 412 `PRECONDITION_FAILED`.
    pub fn check(&self, current: &ETag) -> Result<(), ApiError> {
        let Some(tags) = &self.0 else { return Ok(()) };
        if tags.iter().any(|t| t == "*" || t == current.as_str()) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            codes::PRECONDITION_FAILED,
            "the record changed since it was read (If-Match does not match its ETag): read it again",
        )
        .with_details(serde_json::json!({ "etag": current.as_str() })))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut tags = Vec::new();
        let mut present = false;
        for value in parts.headers.get_all(IF_MATCH) {
            present = true;
            let value = value.to_str().map_err(|_| ApiError::validation([("If-Match", "must be a list of entity tags")]))?;
            for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let quoted = tag.trim_start_matches("W/");
                if tag != "*" && !(quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"')) {
                    return Err(ApiError::validation([("If-Match", "must be * or quoted entity tags, e.g. \"1764500000000000\"")]));
                }
                tags.push(tag.to_owned());
            }
        }
        Ok(Self(present.then_some(tags)))
    }
}

/// A JSON response with its `ETag` header (200, or 201 with [`Tagged::created`]).
#[derive(Debug, Clone)]
pub struct Tagged<T> {
    pub etag: ETag,
    pub body: T,
    pub status: StatusCode,
}

impl<T> Tagged<T> {
    pub fn new(etag: ETag, body: T) -> Self {
        Self { etag, body, status: StatusCode::OK }
    }

    pub fn created(etag: ETag, body: T) -> Self {
        Self { etag, body, status: StatusCode::CREATED }
    }
}

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Ok(value) = HeaderValue::from_str(self.etag.as_str()) {
            response.headers_mut().insert(ETAG, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_version_and_compare_strongly() {
        let t = DateTime::from_timestamp_micros(1_764_500_000_123_456).unwrap();
        let tag = ETag::of(t);
        assert_eq!(tag.as_str(), "\"1764500000123456\"");
        assert!(IfMatch::default().check(&tag).is_ok());
        assert!(IfMatch::tags(["*"]).check(&tag).is_ok());
        assert!(IfMatch::tags(["\"1\"", "\"1764500000123456\""]).check(&tag).is_ok());
        let stale = IfMatch::tags(["\"1764500000123455\""]).check(&tag).unwrap_err();
        assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
        assert!(IfMatch::tags(["W/\"1764500000123456\""]).check(&tag).is_err());
    }
}
