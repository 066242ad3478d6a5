//! Request and response helpers of auth-service.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use crm_web::{ApiError, AppJson, codes};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AppState;

/// A JSON body that may hold secrets (passwords, tokens). Like [`AppJson`], but a body of
/// the wrong shape is refused without quoting the offending value: serde's messages quote it
/// (`invalid type: integer `12345678`, expected a string`), and that value may be a password.
pub struct SecretJson<T>(pub T);

const PREFIX: &str = "Failed to deserialize the JSON body into the target type: ";

/// Keeps serde's field path and the "missing/unknown field" messages, drops quoted values.
fn redact(message: &str) -> String {
    let detail = message.strip_prefix(PREFIX).unwrap_or(message);
    if detail.starts_with("missing field") || detail.starts_with("unknown field") {
        return format!("invalid request body: {detail}");
    }
    match detail.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') && !rest.starts_with("missing field") && !rest.starts_with("unknown field") => {
            format!("invalid request body: {path}: invalid type or value")
        }
        Some((path, rest)) if !path.contains(' ') => format!("invalid request body: {path}: {rest}"),
        _ => "invalid request body: invalid type or value".to_owned(),
    }
}

impl<S, T> FromRequest<S> for SecretJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::bad_request(redact(&e.body_text()))),
            Err(JsonRejection::JsonSyntaxError(_)) => Err(ApiError::bad_request("invalid request body: malformed JSON")),
            // As crm_web's JSON rejections: 415 without a JSON content type, 413 over the limit.
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "expected a request body with Content-Type: application/json",
            )),
            Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::payload_too_large()),
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// 202 Accepted with a JSON body.
pub struct Accepted<T>(pub T);

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, AppJson(self.0)).into_response()
    }
}

/// The caller's address for throttling and security logs: the TCP peer, or the first
/// `X-Forwarded-For` hop when [`crate::Settings::trust_forwarded_for`] (behind an ingress).
/// As `crm_web::ClientIp`, with the setting read once at start instead of per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let from_header = state
            .settings
            .trust_forwarded_for
            .then(|| parts.headers.get("x-forwarded-for")?.to_str().ok()?.split(',').next().map(|s| s.trim().to_owned()))
            .flatten();
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(Self(from_header.or(peer).unwrap_or_else(|| "unknown".to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_never_quoted() {
        let cases = [
            (format!("{PREFIX}password: invalid type: integer `12345678`, expected a string at line 1 column 30"), "invalid request body: password: invalid type or value"),
            (format!("{PREFIX}missing field `password` at line 1 column 20"), "invalid request body: missing field `password` at line 1 column 20"),
            (format!("{PREFIX}unknown field `x`, expected `a` at line 1 column 5"), "invalid request body: unknown field `x`, expected `a` at line 1 column 5"),
            (format!("{PREFIX}invalid type: string \"hunter22\", expected a map at line 1 column 9"), "invalid request body: invalid type or value"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(&input), expected);
        }
    }
}
