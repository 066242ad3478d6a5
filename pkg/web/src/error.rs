//! The one error type of every HTTP handler and its wire shape.
//!
//! Every error response of every service has the body
//! `{"error": "<human message>", "code": "<UPPER_SNAKE>", "details": <object|null>, "request_id": "<id>"}`.
//! Handlers return `Result<_, ApiError>` and use `?`: database errors convert through the
//! `From` impls below, so the SQLSTATE mapping lives in one place.

use std::collections::BTreeMap;
use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::error::SqlState;

use crate::request_id;

/// Stable error codes, the `code` field of every error body.
///
/// Typed clients decode an error body back with [`codes::status_of`] and compare `code`
/// against these constants; a code never changes meaning once published.
pub mod codes {
    use axum::http::StatusCode;

    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const VALIDATION_FAILED: &str = "VALIDATION_FAILED";
    pub const INVALID_CURSOR: &str = "INVALID_CURSOR";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// The token was valid but the user's role or status changed since it was issued.
    pub const TOKEN_REVOKED: &str = "TOKEN_REVOKED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const TENANT_MISMATCH: &str = "TENANT_MISMATCH";
    pub const TENANT_SUSPENDED: &str = "TENANT_SUSPENDED";
    pub const TENANT_INACTIVE: &str = "TENANT_INACTIVE";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const CONFLICT: &str = "CONFLICT";
    /// `If-Match` names a version the record no longer has (412).
    pub const PRECONDITION_FAILED: &str = "PRECONDITION_FAILED";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const UNPROCESSABLE: &str = "UNPROCESSABLE";
    pub const REFERENCE_NOT_FOUND: &str = "REFERENCE_NOT_FOUND";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const INTERNAL: &str = "INTERNAL";
    pub const NOT_IMPLEMENTED: &str = "NOT_IMPLEMENTED";
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    pub const TIMEOUT: &str = "TIMEOUT";

    // Codes of one service's rules; the registry is shared so clients decode every code.
    /// A CSV file that cannot be read (encoding, header, duplicate column, line too long).
    pub const INVALID_CSV: &str = "INVALID_CSV";
    /// An email click-tracking link that was not signed by us.
    pub const INVALID_TRACKING_LINK: &str = "INVALID_TRACKING_LINK";
    /// A password reset token that is invalid, used or expired.
    pub const INVALID_RESET_TOKEN: &str = "INVALID_RESET_TOKEN";
    /// Login with a wrong email or password (never says which).
    pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
    /// A rotated refresh token presented again: the session is revoked.
    pub const REFRESH_TOKEN_REUSED: &str = "REFRESH_TOKEN_REUSED";
    /// Self-service tenant signup is switched off (`TENANT_SIGNUP`).
    pub const SIGNUP_CLOSED: &str = "SIGNUP_CLOSED";
    /// No such invitation.
    pub const INVITATION_NOT_FOUND: &str = "INVITATION_NOT_FOUND";
    /// The email already belongs to a user of the tenant.
    pub const EMAIL_TAKEN: &str = "EMAIL_TAKEN";
    /// The subdomain is taken or reserved.
    pub const SUBDOMAIN_TAKEN: &str = "SUBDOMAIN_TAKEN";
    /// A pending invitation for the email exists.
    pub const INVITATION_PENDING: &str = "INVITATION_PENDING";
    /// The invitation was already accepted or revoked.
    pub const INVITATION_NOT_PENDING: &str = "INVITATION_NOT_PENDING";
    /// The tenant's last active admin cannot be demoted or deactivated.
    pub const LAST_ADMIN: &str = "LAST_ADMIN";
    /// A pipeline stage with that key exists.
    pub const STAGE_EXISTS: &str = "STAGE_EXISTS";
    /// The stage holds deals (or its kind cannot change while it does).
    pub const STAGE_IN_USE: &str = "STAGE_IN_USE";
    /// The pipeline's last open stage cannot be removed.
    pub const LAST_OPEN_STAGE: &str = "LAST_OPEN_STAGE";
    /// An email template with that name exists.
    pub const TEMPLATE_NAME_TAKEN: &str = "TEMPLATE_NAME_TAKEN";
    /// The invitation expired.
    pub const INVITATION_EXPIRED: &str = "INVITATION_EXPIRED";
    /// The invitation was revoked.
    pub const INVITATION_REVOKED: &str = "INVITATION_REVOKED";
    /// No pipeline stage has that key.
    pub const UNKNOWN_STAGE: &str = "UNKNOWN_STAGE";
    /// A won or lost deal changes stage only with `"reopen": true`.
    pub const DEAL_CLOSED: &str = "DEAL_CLOSED";
    /// Deals cannot move to a stage of another kind when a stage is deleted.
    pub const INVALID_STAGE_MOVE: &str = "INVALID_STAGE_MOVE";
    /// A template uses variables that do not exist.
    pub const UNKNOWN_TEMPLATE_VARIABLE: &str = "UNKNOWN_TEMPLATE_VARIABLE";
    /// The contact is already on the deal.
    pub const CONTACT_ON_DEAL: &str = "CONTACT_ON_DEAL";
    /// An email to a contact that has no email address.
    pub const CONTACT_HAS_NO_EMAIL: &str = "CONTACT_HAS_NO_EMAIL";
    /// A company cannot be its own ancestor (parent_company_id).
    pub const COMPANY_CYCLE: &str = "COMPANY_CYCLE";
    /// A template placeholder is not closed.
    pub const TEMPLATE_SYNTAX_ERROR: &str = "TEMPLATE_SYNTAX_ERROR";
    /// The email template is not active.
    pub const TEMPLATE_INACTIVE: &str = "TEMPLATE_INACTIVE";
    /// A webhook URL refused by the SSRF guard (its host resolves to a loopback, private,
    /// link-local, ... address not listed in `WEBHOOK_ALLOWED_HOSTS`); `details.fields` names it.
    pub const WEBHOOK_TARGET_REFUSED: &str = "WEBHOOK_TARGET_REFUSED";

    /// Every shared code with the status it is sent with. Services may add their own codes
    /// (e.g. `INVALID_STAGE_TRANSITION` with 422) through [`super::ApiError::conflict`] and
    /// [`super::ApiError::unprocessable`]; the status then tells the client the category.
    pub const ALL: &[(&str, StatusCode)] = &[
        (BAD_REQUEST, StatusCode::BAD_REQUEST),
        (VALIDATION_FAILED, StatusCode::BAD_REQUEST),
        (INVALID_CURSOR, StatusCode::BAD_REQUEST),
        (UNSUPPORTED_MEDIA_TYPE, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (UNAUTHORIZED, StatusCode::UNAUTHORIZED),
        (TOKEN_REVOKED, StatusCode::UNAUTHORIZED),
        (FORBIDDEN, StatusCode::FORBIDDEN),
        (TENANT_MISMATCH, StatusCode::FORBIDDEN),
        (TENANT_SUSPENDED, StatusCode::FORBIDDEN),
        (TENANT_INACTIVE, StatusCode::FORBIDDEN),
        (NOT_FOUND, StatusCode::NOT_FOUND),
        (METHOD_NOT_ALLOWED, StatusCode::METHOD_NOT_ALLOWED),
        (CONFLICT, StatusCode::CONFLICT),
        (PRECONDITION_FAILED, StatusCode::PRECONDITION_FAILED),
        (PAYLOAD_TOO_LARGE, StatusCode::PAYLOAD_TOO_LARGE),
        (UNPROCESSABLE, StatusCode::UNPROCESSABLE_ENTITY),
        (REFERENCE_NOT_FOUND, StatusCode::UNPROCESSABLE_ENTITY),
        (RATE_LIMITED, StatusCode::TOO_MANY_REQUESTS),
        (INTERNAL, StatusCode::INTERNAL_SERVER_ERROR),
        (NOT_IMPLEMENTED, StatusCode::NOT_IMPLEMENTED),
        (SERVICE_UNAVAILABLE, StatusCode::SERVICE_UNAVAILABLE),
        (TIMEOUT, StatusCode::SERVICE_UNAVAILABLE),
        (INVALID_CSV, StatusCode::BAD_REQUEST),
        (INVALID_TRACKING_LINK, StatusCode::BAD_REQUEST),
        (INVALID_RESET_TOKEN, StatusCode::BAD_REQUEST),
        (INVALID_CREDENTIALS, StatusCode::UNAUTHORIZED),
        (REFRESH_TOKEN_REUSED, StatusCode::UNAUTHORIZED),
        (SIGNUP_CLOSED, StatusCode::FORBIDDEN),
        (INVITATION_NOT_FOUND, StatusCode::NOT_FOUND),
        (EMAIL_TAKEN, StatusCode::CONFLICT),
        (SUBDOMAIN_TAKEN, StatusCode::CONFLICT),
        (INVITATION_PENDING, StatusCode::CONFLICT),
        (INVITATION_NOT_PENDING, StatusCode::CONFLICT),
        (LAST_ADMIN, StatusCode::CONFLICT),
        (STAGE_EXISTS, StatusCode::CONFLICT),
        (STAGE_IN_USE, StatusCode::CONFLICT),
        (LAST_OPEN_STAGE, StatusCode::CONFLICT),
        (TEMPLATE_NAME_TAKEN, StatusCode::CONFLICT),
        (INVITATION_EXPIRED, StatusCode::GONE),
        (INVITATION_REVOKED, StatusCode::GONE),
        (UNKNOWN_STAGE, StatusCode::UNPROCESSABLE_ENTITY),
        (DEAL_CLOSED, StatusCode::UNPROCESSABLE_ENTITY),
        (INVALID_STAGE_MOVE, StatusCode::UNPROCESSABLE_ENTITY),
        (UNKNOWN_TEMPLATE_VARIABLE, StatusCode::UNPROCESSABLE_ENTITY),
        (TEMPLATE_SYNTAX_ERROR, StatusCode::UNPROCESSABLE_ENTITY),
        (COMPANY_CYCLE, StatusCode::UNPROCESSABLE_ENTITY),
        (CONTACT_ON_DEAL, StatusCode::CONFLICT),
        (CONTACT_HAS_NO_EMAIL, StatusCode::UNPROCESSABLE_ENTITY),
        (TEMPLATE_INACTIVE, StatusCode::UNPROCESSABLE_ENTITY),
        (WEBHOOK_TARGET_REFUSED, StatusCode::UNPROCESSABLE_ENTITY),
    ];

    /// The status a shared code is sent with.
    pub fn status_of(code: &str) -> Option<StatusCode> {
        ALL.iter().find(|(c, _)| *c == code).map(|(_, s)| *s)
    }

    /// The generic code for a status, used to reshape errors that did not come from an
    /// [`super::ApiError`] (framework rejections, timeouts).
    pub fn for_status(status: StatusCode) -> &'static str {
        match status {
            StatusCode::BAD_REQUEST => BAD_REQUEST,
            StatusCode::UNAUTHORIZED => UNAUTHORIZED,
            StatusCode::FORBIDDEN => FORBIDDEN,
            StatusCode::NOT_FOUND => NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED => METHOD_NOT_ALLOWED,
            StatusCode::CONFLICT => CONFLICT,
            StatusCode::PAYLOAD_TOO_LARGE => PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => UNSUPPORTED_MEDIA_TYPE,
            StatusCode::UNPROCESSABLE_ENTITY => UNPROCESSABLE,
            StatusCode::TOO_MANY_REQUESTS => RATE_LIMITED,
            StatusCode::NOT_IMPLEMENTED => NOT_IMPLEMENTED,
            StatusCode::SERVICE_UNAVAILABLE => SERVICE_UNAVAILABLE,
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => TIMEOUT,
            s if s.is_server_error() => INTERNAL,
            _ => BAD_REQUEST,
        }
    }
}

/// The wire shape of an error, for serializing here and for typed clients to decode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
    pub details: Option<Value>,
    pub request_id: String,
}

/// An error as a handler returns it; becomes the JSON body above.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Value>,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with any status and code; prefer the named constructors.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after_secs: None }
    }

    /// Adds a `Retry-After` header (seconds) to the answer, e.g. to a 503 that a client may
    /// retry soon (per-tenant admission, [`crate::admission`]).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Attaches a details object (`null` otherwise).
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }

    /// 400 `BAD_REQUEST`: malformed input that is not about one named field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    /// 400 `VALIDATION_FAILED` with `details: {"fields": {field: message, ...}}`.
    pub fn validation<F, M>(fields: impl IntoIterator<Item = (F, M)>) -> Self
    where
        F: Into<String>,
        M: Into<String>,
    {
        let fields: BTreeMap<String, String> =
            fields.into_iter().map(|(f, m)| (f.into(), m.into())).collect();
        Self::new(StatusCode::BAD_REQUEST, codes::VALIDATION_FAILED, "validation failed")
            .with_details(json!({ "fields": fields }))
    }

    /// 401 `UNAUTHORIZED`: no, malformed, invalid or expired credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
    }

    /// 403 `FORBIDDEN`: authenticated, but the role may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, message)
    }

    /// 404 `NOT_FOUND`, e.g. `not_found("contact")`. Also for rows of another tenant: never
    /// reveal that they exist.
    pub fn not_found(resource: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, format!("{resource} not found"))
    }

    /// 409 with a specific code (`EMAIL_TAKEN`, `SUBDOMAIN_TAKEN`, or [`codes::CONFLICT`]).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: a business rule was violated (bad stage transition, unknown referenced row).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429 `RATE_LIMITED` with a `Retry-After` header.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::RATE_LIMITED,
            format!("too many requests, retry in {retry_after_secs} s"),
        );
        e.retry_after_secs = Some(retry_after_secs);
        e
    }

    /// 413 `PAYLOAD_TOO_LARGE`.
    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE, "request body too large")
    }

    /// 503 `SERVICE_UNAVAILABLE`: a dependency (database, NATS, another service) is down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, codes::SERVICE_UNAVAILABLE, message)
    }

    /// 501 `NOT_IMPLEMENTED`.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, codes::NOT_IMPLEMENTED, message)
    }

    /// 500 `INTERNAL`. The body stays generic: the real error is logged here, once, with the
    /// request id, and never sent to the client.
    pub fn internal(err: impl fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current_or_unknown(), error = %err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, "internal error")
    }

    fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.clone(),
            code: self.code.to_owned(),
            details: self.details.clone(),
            request_id: request_id::current_or_unknown(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Collects every invalid field of an input, then fails once with all of them
/// (`VALIDATION_FAILED`), so a client can show every problem at the same time.
///
/// ```
/// # use crm_web::FieldErrors;
/// let mut errors = FieldErrors::new();
/// errors.check("email", "a@b".contains('@'), "invalid email format");
/// errors.check("first_name", !"".is_empty(), "required");
/// assert!(errors.into_result().is_err());
/// ```
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` for `field` (the first message per field wins).
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, field: &str, ok: bool, message: &str) {
        if !ok {
            self.add(field, message);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when no field was recorded, else one 400 listing them all.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::validation(self.0)) }
    }
}

impl From<crm_tenant::DbError> for ApiError {
    fn from(err: crm_tenant::DbError) -> Self {
        match err {
            crm_tenant::DbError::Unavailable(e) => {
                tracing::warn!(request_id = %request_id::current_or_unknown(), error = %e, "database unavailable");
                Self::unavailable("database unavailable")
            }
            crm_tenant::DbError::Query(e) => e.into(),
            refused @ crm_tenant::DbError::Refused(_) => Self::internal(refused),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(err: tokio_postgres::Error) -> Self {
        let Some(db) = err.as_db_error() else {
            // Not a server error: a dead connection is "dependency down"; anything else
            // (a bad parameter type, an unexpected row count) is a bug of ours.
            let io = std::error::Error::source(&err).is_some_and(|s| s.is::<std::io::Error>());
            if err.is_closed() || io {
                tracing::warn!(request_id = %request_id::current_or_unknown(), error = %err, "database connection lost");
                return Self::unavailable("database unavailable");
            }
            return Self::internal(err);
        };
        let code = db.code();
        let constraint = db.constraint();
        if *code == SqlState::UNIQUE_VIOLATION {
            Self::conflict(codes::CONFLICT, "already exists").with_details(json!({ "constraint": constraint }))
        } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
            Self::unprocessable(codes::REFERENCE_NOT_FOUND, "a referenced record does not exist")
                .with_details(json!({ "constraint": constraint }))
        } else if *code == SqlState::CHECK_VIOLATION || *code == SqlState::NOT_NULL_VIOLATION {
            Self::bad_request("invalid value").with_details(json!({ "constraint": constraint, "column": db.column() }))
        } else if [
            SqlState::STRING_DATA_RIGHT_TRUNCATION,
            SqlState::CHARACTER_NOT_IN_REPERTOIRE, // NUL in text: refused by the extractors first
            SqlState::UNTRANSLATABLE_CHARACTER,
            SqlState::INVALID_TEXT_REPRESENTATION,
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            SqlState::DATETIME_FIELD_OVERFLOW,
        ]
        .contains(code)
        {
            Self::bad_request("invalid value: out of range or wrong format")
        } else if [
            SqlState::QUERY_CANCELED, // statement_timeout
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code)
            || code.code().starts_with("08")
        {
            // Transient: the client may retry.
            tracing::warn!(request_id = %request_id::current_or_unknown(), sqlstate = code.code(), error = %db, "transient database error");
            Self::unavailable("database unavailable, retry later")
        } else {
            Self::internal(format!("{err}: {db}"))
        }
    }
}

impl From<crm_events::PublishError> for ApiError {
    fn from(err: crm_events::PublishError) -> Self {
        match err {
            crm_events::PublishError::Db(e) => e.into(),
            encode @ crm_events::PublishError::Encode(_) => Self::internal(encode),
        }
    }
}

/// Schema DDL (tenant provisioning, deletion): a lost connection is 503, anything else a bug.
impl From<crm_database::migrate::MigrateError> for ApiError {
    fn from(err: crm_database::migrate::MigrateError) -> Self {
        match err {
            crm_database::migrate::MigrateError::Db(e) => e.into(),
            other => Self::internal(other),
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: ApiError) -> (StatusCode, Value, Option<String>) {
        let response = e.into_response();
        let status = response.status();
        let retry = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap_or_default().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or_default(), retry)
    }

    #[tokio::test]
    async fn shape_and_fallback_request_id() {
        let (status, body, _) = body_of(ApiError::not_found("contact")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"error": "contact not found", "code": "NOT_FOUND", "details": null, "request_id": "unknown"})
        );
    }

    #[tokio::test]
    async fn request_id_comes_from_the_task_local() {
        let (_, body, _) = request_id::scope("abc-1".into(), body_of(ApiError::bad_request("x"))).await;
        assert_eq!(body["request_id"], "abc-1");
    }

    #[tokio::test]
    async fn validation_lists_every_field() {
        let mut errors = FieldErrors::new();
        errors.add("email", "invalid email format");
        errors.check("password", false, "at least 8 characters");
        errors.check("name", true, "required");
        let (status, body, _) = body_of(errors.into_result().unwrap_err()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "VALIDATION_FAILED");
        assert_eq!(
            body["details"],
            json!({"fields": {"email": "invalid email format", "password": "at least 8 characters"}})
        );
        assert!(FieldErrors::new().into_result().is_ok());
    }

    #[tokio::test]
    async fn internal_is_generic_and_429_has_retry_after() {
        let (status, body, _) = body_of(ApiError::internal("relation \"secret_table\" does not exist")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "internal error");
        assert_eq!(body["code"], "INTERNAL");

        let (status, body, retry) = body_of(ApiError::too_many_requests(42)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["code"], "RATE_LIMITED");
        assert_eq!(retry.as_deref(), Some("42"));
    }

    #[test]
    fn code_registry_is_consistent() {
        for (code, status) in codes::ALL {
            assert_eq!(codes::status_of(code), Some(*status));
            assert!(code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{code}");
        }
        assert_eq!(codes::status_of("NOPE"), None);
    }

    #[test]
    fn error_body_round_trips_for_clients() {
        let json = r#"{"error":"x","code":"CONFLICT","details":{"constraint":"users_email_key"},"request_id":"r"}"#;
        let body: ErrorBody = serde_json::from_str(json).unwrap();
        assert_eq!(codes::status_of(&body.code), Some(StatusCode::CONFLICT));
    }
}
