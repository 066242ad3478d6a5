//! auth-service's public contract: its DTOs (seed 004) and a typed client.

pub mod subjects;
mod cached;

pub use cached::CachedAuthClient;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
pub use crm_client_core::{CallContext, ClientConfig, ClientError};
/// The per-tenant name caches ([`CachedAuthClient`] is one), re-exported for services that
/// wire them without depending on the core crate.
pub use crm_client_core::names;
use crm_client_core::{HttpClient, ids_query};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most used DTO of the platform: who a user id is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserBasicInfo {
    pub id: i32,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// admin, manager, sales_rep, viewer
    pub role: String,
}

impl UserBasicInfo {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserDetails {
    pub id: i32,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    /// active, inactive, pending
    pub status: String,
    pub email_verified: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The record's version (profile, role, status or password changed); its `ETag`.
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JWTToken {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
    /// "Bearer"
    pub token_type: String,
}

/// Who is calling, as every service's middleware sees it (from the verified JWT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthContext {
    pub user_id: i32,
    /// ULID
    pub tenant_id: String,
    pub email: String,
    pub role: String,
}

/// Answer of login, registration and refresh: the [`JWTToken`] of seed 004 plus
/// `expires_in` (seconds of the access token) and the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    #[serde(flatten)]
    pub token: JWTToken,
    pub expires_in: i64,
    pub user: UserDetails,
}

/// `GET /auth/me`: the caller's [`UserDetails`] and what the role may do
/// (`"resource:action:scope"`, e.g. `"contacts:write:own"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    #[serde(flatten)]
    pub user: UserDetails,
    pub permissions: Vec<String>,
}

/// One change of a user's profile, role, status or password (`GET /users/{id}/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserAuditEntry {
    pub id: i64,
    pub user_id: i32,
    /// Who made the change; `null` for the user through a password reset link.
    pub actor_id: Option<i32>,
    /// first_name, last_name, role, status, password, user (registration)
    pub field: String,
    /// `null` for passwords (never recorded) and at creation.
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub changed_at: DateTime<Utc>,
}

/// `{"data": [...]}` of the batch lookups.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserBatch {
    pub data: Vec<UserBasicInfo>,
}

/// Most ids one batch lookup takes.
pub const MAX_BATCH: usize = 500;

#[async_trait]
pub trait AuthClient: Send + Sync {
    async fn user_basic(&self, ctx: &CallContext, id: i32) -> Result<UserBasicInfo, ClientError>;
    /// The users among `ids` that exist in the caller's tenant (one request per 500 ids).
    async fn users_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<UserBasicInfo>, ClientError>;
    /// The user of the caller's tenant with this email, whatever their status (`NotFound`
    /// when there is none). Admin, manager or service tokens only.
    async fn user_by_email(&self, ctx: &CallContext, email: &str) -> Result<UserDetails, ClientError>;
}

/// The reqwest implementation (`AUTH_SERVICE_URL`, default http://127.0.0.1:8080).
pub struct HttpAuthClient {
    http: HttpClient,
}

impl HttpAuthClient {
    pub fn new(config: ClientConfig) -> Self {
        Self { http: HttpClient::new(config) }
    }
}

#[async_trait]
impl AuthClient for HttpAuthClient {
    async fn user_basic(&self, ctx: &CallContext, id: i32) -> Result<UserBasicInfo, ClientError> {
        self.http.get(ctx, &format!("/api/v1/users/{id}/basic")).await
    }

    async fn users_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<UserBasicInfo>, ClientError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH) {
            let batch: UserBatch = self.http.get(ctx, &format!("/api/v1/users/basic?ids={}", ids_query(chunk))).await?;
            found.extend(batch.data);
        }
        Ok(found)
    }

    async fn user_by_email(&self, ctx: &CallContext, email: &str) -> Result<UserDetails, ClientError> {
        self.http.get(ctx, &format!("/api/v1/users/by-email?email={}", query_value(email))).await
    }
}

/// `value` percent-encoded for a query string (everything but RFC 3986 unreserved bytes).
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(super::query_value("a+b@x.example"), "a%2Bb%40x.example");
        assert_eq!(super::query_value("ü&x=1 #"), "%C3%BC%26x%3D1%20%23");
    }
}

#[cfg(any(test, feature = "mock"))]
pub use mock::MockAuthClient;

/// The test stand-in, behind the `mock` feature (enabled by dev-dependencies only).
#[cfg(any(test, feature = "mock"))]
mod mock;
