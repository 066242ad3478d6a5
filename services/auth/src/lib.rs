//! auth-service (:8080): users of each tenant (table `users` in the tenant schema), login
//! with throttling, JWT access + rotating refresh tokens, registration by invitation,
//! password reset, the user administration endpoints and their audit trail.
//!
//! Token verification is not here: every service verifies tokens locally with
//! `crm_web::AuthUser`, and refuses tokens made stale by a role change or deactivation with
//! `crm_web::RevocationGuard`, fed by the `platform.token_revocations` rows written here.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use crm_client_tenant::TenantClient;
use crm_tenant::{TenantDb, TenantRegistry};
use crm_web::{AuthState, CursorCodec};
use utoipa::OpenApi;

mod domain;
mod extract;
pub mod handlers;
pub mod password;
mod repo;
mod tenancy;
mod tokens;
pub mod users;

pub use password::PasswordHasher;

pub const SERVICE: &str = "auth-service";
pub const DEFAULT_PORT: u16 = 8080;

/// Settings of auth-service, from the environment (see [`AuthConfig::from_env`]).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `BCRYPT_COST` (default 12; tests use 4).
    pub bcrypt_cost: u32,
    /// `BCRYPT_CONCURRENCY`: password hashes computed at the same time (default: cores - 1,
    /// at least 1), so logins never take every core from the other requests.
    pub hash_concurrency: usize,
    /// `JWT_ACCESS_TTL_SECS` (default 24 h).
    pub access_ttl: Duration,
    /// `JWT_REFRESH_TTL_SECS` (default 7 d).
    pub refresh_ttl: Duration,
    /// `PASSWORD_RESET_TTL_SECS` (default 1 h).
    pub reset_ttl: Duration,
    /// `BASE_DOMAIN` (default `crm.localhost`): `acme.<base>` in `Host` names tenant `acme`.
    pub base_domain: String,
    /// `LOGIN_MAX_FAILURES` per IP + email in `LOGIN_WINDOW_SECS` (default 5 in 900 s).
    pub login_max_failures: i32,
    pub login_window_secs: i64,
    /// Reset emails sent per tenant + email and hour (further requests are silently dropped).
    pub reset_requests_per_hour: i32,
    /// Lifetime of the service token sent to tenant-service when accepting an invitation.
    pub service_token_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Self {
            bcrypt_cost: 12,
            hash_concurrency: cores.saturating_sub(1).max(1),
            access_ttl: Duration::from_secs(24 * 3600),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            reset_ttl: Duration::from_secs(3600),
            base_domain: "crm.localhost".to_owned(),
            login_max_failures: 5,
            login_window_secs: 15 * 60,
            reset_requests_per_hour: 5,
            service_token_ttl: Duration::from_secs(60),
        }
    }
}

impl AuthConfig {
    pub fn from_env() -> Result<Self, String> {
        let mut c = Self::default();
        if let Some(cost) = env_parse::<u32>("BCRYPT_COST")? {
            if !(4..=31).contains(&cost) {
                return Err(format!("BCRYPT_COST must be between 4 and 31, got {cost}"));
            }
            c.bcrypt_cost = cost;
        }
        if let Some(n) = env_parse::<usize>("BCRYPT_CONCURRENCY")? {
            c.hash_concurrency = n.max(1);
        }
        if let Some(s) = env_parse::<u64>("JWT_ACCESS_TTL_SECS")? {
            c.access_ttl = Duration::from_secs(s);
        }
        if let Some(s) = env_parse::<u64>("JWT_REFRESH_TTL_SECS")? {
            c.refresh_ttl = Duration::from_secs(s);
        }
        if let Some(s) = env_parse::<u64>("PASSWORD_RESET_TTL_SECS")? {
            c.reset_ttl = Duration::from_secs(s);
        }
        if let Ok(v) = std::env::var("BASE_DOMAIN")
            && !v.trim().is_empty()
        {
            c.base_domain = v.trim().to_ascii_lowercase();
        }
        if let Some(n) = env_parse::<i32>("LOGIN_MAX_FAILURES")? {
            c.login_max_failures = n.max(1);
        }
        if let Some(s) = env_parse::<i64>("LOGIN_WINDOW_SECS")? {
            c.login_window_secs = s.max(1);
        }
        Ok(c)
    }
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| format!("{name} must be a number, got {v:?}")),
        _ => Ok(None),
    }
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: TenantDb,
    pub auth: AuthState,
    pub registry: Arc<TenantRegistry>,
    pub cursors: Arc<CursorCodec>,
    pub config: Arc<AuthConfig>,
    pub tenants: Arc<dyn TenantClient>,
    pub hasher: Arc<PasswordHasher>,
}

impl AppState {
    /// State from the shared pieces; the hasher is built from `config`.
    pub fn new(
        db: TenantDb,
        auth: AuthState,
        registry: Arc<TenantRegistry>,
        cursors: Arc<CursorCodec>,
        config: AuthConfig,
        tenants: Arc<dyn TenantClient>,
    ) -> Self {
        let hasher = Arc::new(PasswordHasher::new(config.bcrypt_cost, config.hash_concurrency));
        Self { db, auth, registry, cursors, config: Arc::new(config), tenants, hasher }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "auth-service", description = "Users, login, tokens, password reset, user administration"),
    paths(
        handlers::register,
        handlers::login,
        handlers::refresh,
        handlers::logout,
        handlers::password_reset,
        handlers::password_reset_confirm,
        handlers::me,
        users::list_users,
        users::get_user,
        users::get_basic,
        users::batch_basic,
        users::patch_user,
        users::user_audit,
    ),
    components(schemas(
        crm_client_auth::UserBasicInfo,
        crm_client_auth::UserDetails,
        crm_client_auth::JWTToken,
        crm_client_auth::LoginResponse,
        crm_client_auth::MeResponse,
        crm_client_auth::UserAuditEntry,
        crm_client_auth::UserBatch,
    ))
)]
pub struct ApiDoc;

/// The service's API routes (system routes and layers are added by the caller).
/// Builds the service from the shared platform pieces (tenant-service reached over HTTP at
/// `TENANT_SERVICE_URL`) and returns its API routes.
pub fn build(platform: &crm_runtime::Platform) -> Result<Router, String> {
    let config = AuthConfig::from_env()?;
    tracing::info!(bcrypt_cost = config.bcrypt_cost, hash_concurrency = config.hash_concurrency, base_domain = %config.base_domain, "auth-service configured");
    let state = AppState::new(
        platform.db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        config,
        std::sync::Arc::new(crm_client_tenant::HttpTenantClient::from_env()),
    );
    Ok(router(state))
}

/// The OpenAPI document as JSON.
pub fn openapi() -> serde_json::Value {
    use utoipa::OpenApi;
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

pub fn router(state: AppState) -> Router {
    use handlers::*;
    use users::*;
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/password-reset", post(password_reset))
        .route("/api/v1/auth/password-reset/confirm", post(password_reset_confirm))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/users", get(list_users))
        .route("/api/v1/users/basic", get(batch_basic))
        .route("/api/v1/users/{id}", get(get_user).patch(patch_user))
        .route("/api/v1/users/{id}/basic", get(get_basic))
        .route("/api/v1/users/{id}/audit", get(user_audit))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_lists_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("OpenAPI as JSON");
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/auth/refresh",
            "/api/v1/auth/logout",
            "/api/v1/auth/password-reset",
            "/api/v1/auth/password-reset/confirm",
            "/api/v1/auth/me",
            "/api/v1/users",
            "/api/v1/users/basic",
            "/api/v1/users/{id}",
            "/api/v1/users/{id}/basic",
            "/api/v1/users/{id}/audit",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
        assert!(paths["/api/v1/users/{id}"].get("patch").is_some());
        assert!(doc["components"]["schemas"]["LoginResponse"].is_object());
    }

    #[test]
    fn defaults_follow_the_issue() {
        let c = AuthConfig::default();
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.access_ttl, Duration::from_secs(86400));
        assert_eq!(c.refresh_ttl, Duration::from_secs(7 * 86400));
        assert_eq!(c.reset_ttl, Duration::from_secs(3600));
        assert_eq!((c.login_max_failures, c.login_window_secs), (5, 900));
        assert!(c.hash_concurrency >= 1);
    }
}
