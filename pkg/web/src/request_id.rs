//! Request ids: accepted from `X-Request-ID` or generated, visible to all code of the request.
//!
//! The id lives in a task-local for the whole request, so an [`crate::ApiError`] built
//! anywhere (even deep in a repository) carries it, and client crates can forward it
//! ([`current`]) without threading it through every signature.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};

use crate::ApiError;

/// The header the id is read from, echoed in and forwarded with.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The id of the request being served on this task, or `"unknown"` outside of a request
/// (background tasks, tests).
pub fn current_or_unknown() -> String {
    current().unwrap_or_else(|| "unknown".to_owned())
}

/// Runs `fut` with `id` as the current request id. The middleware does this for every
/// request; background work spawned for a request can use it to keep the id in its logs.
/// Events published meanwhile carry the id too ([`crm_events::with_request_id`]).
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id.clone(), crm_events::with_request_id(id, fut)).await
}

/// A client-supplied id is kept only when it is 1-128 characters of `[A-Za-z0-9._-]`, so it
/// is safe in logs and headers; anything else is replaced by a fresh ULID.
pub fn accept_or_generate(incoming: Option<&HeaderValue>) -> String {
    incoming
        .and_then(|v| v.to_str().ok())
        .filter(|s| is_valid(s))
        .map_or_else(|| ulid::Ulid::generate().to_string(), str::to_owned)
}

fn is_valid(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The request id as an extractor, for handlers that pass it on explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(current_or_unknown()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_ids_are_validated() {
        let keep = |s: &str| accept_or_generate(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(keep("abc.DEF_123-x"), "abc.DEF_123-x");
        let long = "a".repeat(128);
        assert_eq!(keep(&long), long);
        for bad in ["", "has space", "semi;colon", &"a".repeat(129), "é"] {
            let Ok(value) = HeaderValue::from_str(bad) else { continue };
            let id = accept_or_generate(Some(&value));
            assert_ne!(id, bad);
            assert!(ulid::Ulid::from_string(&id).is_ok());
        }
        assert_eq!(accept_or_generate(None).len(), 26);
    }
}
