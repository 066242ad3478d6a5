//! Extractors whose rejections come out in our error shape, and small response helpers.
//!
//! axum's own `Json`, `Query` and `Path` reject with plain-text bodies (and 422 for a JSON
//! body of the wrong shape); these wrappers turn every rejection into a 400 [`ApiError`]
//! (415 for a missing JSON content type, 413 for an oversized body).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, codes};

/// JSON body extractor and JSON response. Rejections: 415 without a JSON content type, 413
/// over the body limit, 400 `BAD_REQUEST` for malformed JSON, 400 `VALIDATION_FAILED` naming
/// each field for values of the wrong type, missing or unknown fields, and for NUL characters
/// in any string (PostgreSQL cannot store them; decided here, once, for every body).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "expected a request body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE { ApiError::payload_too_large() } else { ApiError::bad_request(e.body_text()) }
        })?;
        decode_json(&bytes).map(AppJson)
    }
}

fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Decodes a JSON document into `T` with the rejections of [`AppJson`].
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // A NUL can only appear escaped (`\u0000`): the scan costs nothing on normal bodies.
    if bytes.windows(6).any(|w| w == b"\\u0000")
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
    {
        let mut fields = Vec::new();
        find_nul(&value, String::new(), &mut fields);
        if !fields.is_empty() {
            return Err(ApiError::validation(fields.into_iter().map(|f| (f, NUL_MESSAGE))));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() { every_field_error::<T>(bytes).unwrap_or_else(|| json_error(&path, inner)) } else { json_error(&path, inner) }
    })?;
    de.end().map_err(|e| ApiError::bad_request(format!("invalid JSON: {}", strip_position(&e.to_string()))))?;
    Ok(value)
}

/// serde stops at the first bad field; a client fixing a form wants them all. The body (known
/// to be valid JSON) is decoded again from its value, each bad field recorded and taken out,
/// until it decodes or nothing more can be taken out (a missing field ends it). Only failed
/// requests pay for this.
fn every_field_error<T: DeserializeOwned>(bytes: &[u8]) -> Option<ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for _ in 0..32 {
        let Err(e) = serde_path_to_error::deserialize::<_, T>(&value) else { break };
        let segments: Option<Vec<Segment>> = e
            .path()
            .iter()
            .map(|s| match s {
                serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                _ => None,
            })
            .collect();
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let (field, text, mut remove) = field_fault(&path, strip_position(&message));
        if fields.iter().any(|(f, _)| *f == field) {
            break;
        }
        fields.push((field, text));
        let Some(mut at) = segments else { break };
        match remove.take() {
            Some(Removal::Key(key)) => at.push(Segment::Key(key)),
            Some(Removal::Here) => {}
            None => break,
        }
        if !take_out(&mut value, &at) {
            break;
        }
    }
    (!fields.is_empty()).then(|| ApiError::validation(fields))
}

enum Segment {
    Key(String),
    Index(usize),
}

/// What to take out of the body to get past a field's fault.
enum Removal {
    /// The value at the error's path.
    Here,
    /// A key of the object at the error's path (an unknown field).
    Key(String),
}

/// Removes the value at `path` (not the root); whether there was one.
fn take_out(value: &mut serde_json::Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut at = value;
    for segment in parents {
        at = match (segment, at) {
            (Segment::Key(k), serde_json::Value::Object(map)) => match map.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Index(i), serde_json::Value::Array(list)) => match list.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, at) {
        (Segment::Key(k), serde_json::Value::Object(map)) => map.remove(k).is_some(),
        (Segment::Index(i), serde_json::Value::Array(list)) if *i < list.len() => {
            list.remove(*i);
            true
        }
        _ => false,
    }
}

const NUL_MESSAGE: &str = "must not contain NUL characters";

fn find_nul(value: &serde_json::Value, path: String, out: &mut Vec<String>) {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => out.push(if path.is_empty() { "body".to_owned() } else { path }),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_nul(item, format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    out.push(join(&key.replace('\0', "\\u0000")));
                } else {
                    find_nul(item, join(key), out);
                }
            }
        }
        _ => {}
    }
}

/// serde_json appends " at line L column C"; the field name says more to an API client.
fn strip_position(message: &str) -> &str {
    message.rfind(" at line ").map_or(message, |i| &message[..i])
}

/// A serde data error as a field error: `missing field `x`` and `unknown field `x`` name
/// their field; anything else is reported at its path.
fn json_error(path: &str, e: serde_json::Error) -> ApiError {
    if e.is_syntax() || e.is_eof() || e.is_io() {
        return ApiError::bad_request(format!("invalid JSON: {}", strip_position(&e.to_string())));
    }
    field_error(path, strip_position(&e.to_string()))
}

fn field_error(path: &str, message: &str) -> ApiError {
    let (field, text, _) = field_fault(path, message);
    ApiError::validation([(field, text)])
}

/// The field a serde error names, its message (values redacted), and what to take out of the
/// body to get past it.
fn field_fault(path: &str, message: &str) -> (String, String, Option<Removal>) {
    let named = |prefix: &str| {
        message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned)
    };
    let root = path == "." || path.is_empty();
    let prefix = if root { String::new() } else { format!("{path}.") };
    if let Some(field) = named("missing field `") {
        return (format!("{prefix}{field}"), "required".to_owned(), None);
    }
    if let Some(field) = named("unknown field `") {
        return (format!("{prefix}{field}"), "unknown field".to_owned(), Some(Removal::Key(field)));
    }
    let field = if root { "body".to_owned() } else { path.to_owned() };
    (field, redact(message), (!root).then_some(Removal::Here))
}

/// serde quotes the offending value (`invalid type: string "hunter22", expected u32`); the
/// value may be a password, so only what was expected is kept.
fn redact(message: &str) -> String {
    let expected = message.split_once(", expected ").map(|(_, e)| e);
    let kind = ["invalid type", "invalid value", "invalid length", "unknown variant"].into_iter().find(|k| message.starts_with(k));
    match (kind, expected) {
        (Some("unknown variant"), Some(e)) => format!("unknown value, expected {e}"),
        (Some(kind), Some(e)) => format!("{kind}, expected {e}"),
        _ => message.to_owned(),
    }
}

/// The body of a `PUT` (a whole resource): like [`AppJson`], but the resource exactly as read
/// may be sent back. The fields only a response carries (`F::READ_ONLY`: ids, timestamps,
/// looked-up names, computed values) are dropped before decoding; every other unknown field
/// is still refused. `ReplaceJson(body, _): ReplaceJson<NewContact, ContactReadOnly>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplaceJson<T, F>(pub T, pub std::marker::PhantomData<F>);

/// The response-only fields of a resource, for [`ReplaceJson`] (a marker type per resource).
pub trait ReadOnlyFields {
    const READ_ONLY: &'static [&'static str];
}

impl<T, F, S> FromRequest<S> for ReplaceJson<T, F>
where
    T: DeserializeOwned,
    F: ReadOnlyFields,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let AppJson(mut body) = AppJson::<serde_json::Value>::from_request(req, state).await?;
        if let Some(fields) = body.as_object_mut() {
            for key in F::READ_ONLY {
                fields.remove(*key);
            }
        }
        let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
        decode_json(&bytes).map(|body| ReplaceJson(body, std::marker::PhantomData))
    }
}

/// Query string extractor. Rejections: 400 `VALIDATION_FAILED` naming each bad parameter
/// (wrong type, unknown value, NUL character).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        decode_query(parts.uri.query().unwrap_or("")).map(AppQuery)
    }
}

/// Decodes a query string into `T` with the rejections of [`AppQuery`].
pub fn decode_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let nul: Vec<(String, &str)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| (k.replace('\0', "%00"), NUL_MESSAGE))
        .collect();
    if !nul.is_empty() {
        return Err(ApiError::validation(nul));
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        field_error(&path, &e.into_inner().to_string())
    })
}

/// Path parameters extractor. Rejections: 400 naming the parameter (NUL characters, wrong
/// type); a route/extractor mismatch is a bug (500).
#[derive(Debug, Clone, Copy)]
pub struct AppPath<T>(pub T);

impl<T, S> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            let nul: Vec<(String, &str)> =
                raw.iter().filter(|(_, v)| v.contains('\0')).map(|(k, _)| (k.to_owned(), NUL_MESSAGE)).collect();
            if !nul.is_empty() {
                return Err(ApiError::validation(nul));
            }
        }
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(AppPath(value))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            // Only when the route and the extractor disagree: a bug, not bad input.
            PathRejection::MissingPathParams(e) => ApiError::internal(e.body_text()),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

/// 201 Created with the resource as JSON.
#[derive(Debug, Clone)]
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, axum::Json(self.0)).into_response()
    }
}

/// 204 No Content (DELETE, logout).
#[derive(Debug, Clone, Copy)]
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// The caller's address for rate limiting and security logs: the TCP peer, or the first
/// `X-Forwarded-For` hop when [`crate::AuthState::trust_forwarded_for`] is set
/// (`TRUST_FORWARDED_FOR`, read once at start; behind an ingress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

impl<S> FromRequestParts<S> for ClientIp
where
    crate::AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let from_header = crate::AuthState::from_ref(state)
            .trust_forwarded_for
            .then(|| parts.headers.get("x-forwarded-for")?.to_str().ok()?.split(',').next().map(|s| s.trim().to_owned()))
            .flatten();
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(Self(from_header.or(peer).unwrap_or_else(|| "unknown".to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        due_at: Option<chrono::DateTime<chrono::Utc>>,
        value: Option<f64>,
        tags: Option<Vec<String>>,
        custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
    }

    fn fields(e: &ApiError) -> Vec<String> {
        let (status, body) = (e.status(), e.details().cloned().unwrap_or_default());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code(), codes::VALIDATION_FAILED, "{e}");
        body["fields"].as_object().map(|f| f.keys().cloned().collect()).unwrap_or_default()
    }

    #[test]
    fn nul_characters_anywhere_in_a_body_name_their_field() {
        for (body, field) in [
            (json!({"name": "ac\u{0}me"}), "name"),
            (json!({"name": "x", "custom_fields": {"size": "big\u{0}"}}), "custom_fields.size"),
            (json!({"name": "x", "tags": ["a", "\u{0}b"]}), "tags[1]"),
            (json!({"name": "\u{0}Ἀθῆναι 東京"}), "name"),
        ] {
            let err = decode_json::<Body>(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(fields(&err), vec![field.to_owned()], "{body}");
        }
        // An escaped backslash followed by u0000 is not a NUL.
        assert!(decode_json::<Body>(br#"{"name": "C:\\u0000"}"#).is_ok());
    }

    #[test]
    fn type_errors_name_their_field() {
        for (body, field) in [
            (r#"{"name": "x", "due_at": "2026-11-30"}"#, "due_at"),
            (r#"{"name": "x", "value": "12.30"}"#, "value"),
            (r#"{"name": 5}"#, "name"),
            (r#"{"value": 1}"#, "name"),
            (r#"{"name": "x", "tags": [1]}"#, "tags[0]"),
        ] {
            let err = decode_json::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!(fields(&err), vec![field.to_owned()], "{body}");
        }
        // Every bad field at once, not only the first serde meets.
        let err = decode_json::<Body>(br#"{"name": 5, "due_at": "2026-11-30", "value": "12.30", "tags": ["a", 1]}"#).unwrap_err();
        let mut all = fields(&err);
        all.sort();
        assert_eq!(all, ["due_at", "name", "tags[1]", "value"]);
        let err = decode_json::<Body>(br#"{"value": "x"}"#).unwrap_err();
        let mut all = fields(&err);
        all.sort();
        assert_eq!(all, ["name", "value"], "a missing field is named beside the wrong ones");
        let err = decode_json::<Body>(br#"{"name": "x", "value": "hunter22"}"#).unwrap_err();
        assert!(!err.details().unwrap().to_string().contains("hunter22"), "values are never quoted: {err:?}");
        let err = decode_json::<Body>(b"{\"name\": ").unwrap_err();
        assert_eq!(err.code(), codes::BAD_REQUEST);
        let err = decode_json::<Body>(b"{\"name\": \"x\"} trailing").unwrap_err();
        assert_eq!(err.code(), codes::BAD_REQUEST);
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Params {
        search: Option<String>,
        limit: Option<i64>,
    }

    #[test]
    fn query_strings_refuse_nul_and_name_bad_parameters() {
        for (query, field) in [("search=ab%00", "search"), ("limit=ten", "limit"), ("search=x&limit=1.5", "limit"), ("se%00arch=x", "se%00arch")] {
            let err = decode_query::<Params>(query).unwrap_err();
            assert_eq!(fields(&err), vec![field.to_owned()], "{query}");
        }
        let ok: Params = decode_query("search=M%C3%BCller&limit=5").unwrap();
        assert_eq!((ok.search.as_deref(), ok.limit), (Some("Müller"), Some(5)));
    }
}
