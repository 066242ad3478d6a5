//! auth-service (:8080): users of each tenant (table `users` in the tenant schema), login
//! with throttling, JWT access + rotating refresh tokens, registration by invitation,
//! password reset, the user administration endpoints and their audit trail.
//!
//! Token verification is not here: every service verifies tokens locally with
//! `crm_web::AuthUser`, and refuses tokens made stale by a role change or deactivation with
//! `crm_web::RevocationGuard`, fed by the `platform.token_revocations` rows written here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use crm_client_tenant::{ClientConfig, HttpTenantClient, TenantClient};
use crm_runtime::settings::{self, SettingsError};
use crm_runtime::{Built, Platform};
use crm_tenant::{TenantDb, TenantRegistry};
use crm_web::{AuthState, CursorCodec};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod consumers;
mod domain;
mod extract;
pub mod handlers;
pub mod input;
pub mod password;
mod repo;
mod service;
mod tenancy;

pub use password::PasswordHasher;
/// The audit log's entry shape and its retention sweep (for `crm` and the tests).
pub use service::audit::{AuditEntry, sweep as audit_retention_sweep};

pub const SERVICE: &str = "auth-service";
pub const DEFAULT_PORT: u16 = 8080;
/// Prefix of the durable consumer names in production.
pub const CONSUMER_PREFIX: &str = "auth";

/// Every setting of auth-service, read once at start by [`Settings::from_env`] (nothing
/// else in this crate reads the environment).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `BCRYPT_COST` (default 12, 4 to 31; tests use 4).
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
    /// `BASE_DOMAIN` (default [`crm_runtime::DEFAULT_BASE_DOMAIN`], `localhost`): `acme.<base>` in `Host` names tenant `acme`.
    pub base_domain: String,
    /// `LOGIN_MAX_FAILURES` per IP + email in `LOGIN_WINDOW_SECS` (default 5 in 900 s).
    pub login_max_failures: i32,
    pub login_window_secs: i64,
    /// Reset emails sent per tenant + email and hour (further requests are silently dropped).
    pub reset_requests_per_hour: i32,
    /// Lifetime of the service token sent to tenant-service when accepting an invitation.
    pub service_token_ttl: Duration,
    /// `TENANT_SERVICE_URL` (default `http://127.0.0.1:8081`): invitations are read and
    /// accepted there.
    pub tenant_service_url: String,
    /// `AUDIT_RETENTION_DAYS` (default 365, at least 1): audit log entries older than this
    /// are deleted by the retention job.
    pub audit_retention_days: u32,
    /// `AUDIT_RETENTION_SWEEP_SECS` (default 3600): how often the retention job runs.
    pub audit_sweep_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Self {
            bcrypt_cost: 12,
            hash_concurrency: cores.saturating_sub(1).max(1),
            access_ttl: Duration::from_secs(24 * 3600),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            reset_ttl: Duration::from_secs(3600),
            base_domain: crm_runtime::DEFAULT_BASE_DOMAIN.to_owned(),
            login_max_failures: 5,
            login_window_secs: 15 * 60,
            reset_requests_per_hour: 5,
            service_token_ttl: Duration::from_secs(60),
            tenant_service_url: "http://127.0.0.1:8081".to_owned(),
            audit_retention_days: 365,
            audit_sweep_interval: Duration::from_secs(3600),
        }
    }
}

/// A duration given in whole seconds, with a default.
fn seconds(name: &'static str, default: Duration) -> Result<Duration, SettingsError> {
    settings::number(name, default.as_secs(), "must be a whole number of seconds").map(Duration::from_secs)
}

impl Settings {
    /// The defaults, overridden by the environment; errors name the variable and the rule.
    pub fn from_env() -> Result<Self, SettingsError> {
        let d = Self::default();
        const COST_RULE: &str = "must be a whole number between 4 and 31";
        let bcrypt_cost: u32 = settings::number("BCRYPT_COST", d.bcrypt_cost, COST_RULE)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(SettingsError::new("BCRYPT_COST", COST_RULE));
        }
        Ok(Self {
            bcrypt_cost,
            hash_concurrency: settings::number("BCRYPT_CONCURRENCY", d.hash_concurrency, "must be a whole number")?.max(1),
            access_ttl: seconds("JWT_ACCESS_TTL_SECS", d.access_ttl)?,
            refresh_ttl: seconds("JWT_REFRESH_TTL_SECS", d.refresh_ttl)?,
            reset_ttl: seconds("PASSWORD_RESET_TTL_SECS", d.reset_ttl)?,
            base_domain: settings::string("BASE_DOMAIN", &d.base_domain).to_ascii_lowercase(),
            login_max_failures: settings::number("LOGIN_MAX_FAILURES", d.login_max_failures, "must be a whole number")?.max(1),
            login_window_secs: settings::number("LOGIN_WINDOW_SECS", d.login_window_secs, "must be a whole number of seconds")?.max(1),
            tenant_service_url: settings::url("TENANT_SERVICE_URL", &d.tenant_service_url)?,
            audit_retention_days: settings::number("AUDIT_RETENTION_DAYS", d.audit_retention_days, "must be a whole number of days, at least 1")?
                .max(1),
            audit_sweep_interval: seconds("AUDIT_RETENTION_SWEEP_SECS", d.audit_sweep_interval)?.max(Duration::from_secs(1)),
            ..d
        })
    }
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: TenantDb,
    pub auth: AuthState,
    pub registry: Arc<TenantRegistry>,
    pub cursors: Arc<CursorCodec>,
    pub settings: Arc<Settings>,
    pub tenants: Arc<dyn TenantClient>,
    pub hasher: Arc<PasswordHasher>,
}

impl AppState {
    /// State from the shared pieces; the hasher is built from `settings`.
    pub fn new(
        db: TenantDb,
        auth: AuthState,
        registry: Arc<TenantRegistry>,
        cursors: Arc<CursorCodec>,
        settings: Settings,
        tenants: Arc<dyn TenantClient>,
    ) -> Self {
        let hasher = Arc::new(PasswordHasher::new(settings.bcrypt_cost, settings.hash_concurrency));
        Self { db, auth, registry, cursors, settings: Arc::new(settings), tenants, hasher }
    }
}

/// Info, tags and the schemas no operation names; the paths come from [`api`].
#[derive(OpenApi)]
#[openapi(
    info(title = "auth-service", description = "Users, login, tokens, password reset, user administration"),
    tags((name = "auth", description = "Registration, login, tokens, password reset"), (name = "users", description = "User administration"), (name = "audit", description = "The tenant's history of changes")),
    components(schemas(
        crm_client_auth::UserBasicInfo,
        crm_client_auth::UserDetails,
        crm_client_auth::JWTToken,
        crm_client_auth::LoginResponse,
        crm_client_auth::MeResponse,
        crm_client_auth::UserAuditEntry,
        crm_client_auth::UserBatch,
        input::RegisterRequest,
        input::LoginRequest,
        input::RefreshRequest,
        input::PasswordResetRequest,
        input::PasswordResetConfirm,
        input::AcceptedBody,
        input::UserPatch,
        service::audit::AuditEntry,
    ))
)]
pub struct ApiDoc;

/// Routes and documented operations from ONE list (utoipa-axum).
fn api() -> OpenApiRouter<AppState> {
    use handlers::{audit, auth, users};
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::password_reset))
        .routes(routes!(auth::password_reset_confirm))
        .routes(routes!(auth::me))
        .routes(routes!(users::list_users))
        .routes(routes!(users::batch_basic))
        .routes(routes!(users::by_email))
        .routes(routes!(users::get_user, users::patch_user))
        .routes(routes!(users::get_basic))
        .routes(routes!(users::user_audit))
        .routes(routes!(audit::list_audit))
}

/// The service's API routes (system routes and layers are added by the caller).
pub fn router(state: AppState) -> axum::Router {
    api().split_for_parts().0.with_state(state)
}

/// The finished OpenAPI document as JSON.
pub fn openapi() -> serde_json::Value {
    crm_web::openapi::finish(api().split_for_parts().1, SERVICE)
}

/// The service from the shared platform pieces and its settings (tenant-service reached
/// over HTTP at `settings.tenant_service_url`). Tasks: the audit log's consumer of every
/// event and its retention job.
pub fn build(platform: &Platform, settings: Settings) -> Built {
    tracing::info!(bcrypt_cost = settings.bcrypt_cost, hash_concurrency = settings.hash_concurrency, base_domain = %settings.base_domain, "auth-service configured");
    let tenants = Arc::new(HttpTenantClient::new(ClientConfig::new(settings.tenant_service_url.clone())));
    let state = AppState::new(platform.db.clone(), platform.auth.clone(), platform.registry.clone(), platform.cursors.clone(), settings, tenants);
    let (spec, handler) = consumers::audit_consumer(CONSUMER_PREFIX, state.settings.audit_retention_days);
    let retention = service::audit::run_retention(state.clone(), state.settings.audit_sweep_interval, platform.shutdown());
    let tasks = vec![platform.consumer_task(spec, handler), crm_runtime::Task { name: "audit retention", future: Box::pin(retention) }];
    Built { name: SERVICE, router: router(state), openapi: openapi(), tasks }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPERATIONS: &[(&str, &str)] = &[
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/password-reset", "post"),
        ("/api/v1/auth/password-reset/confirm", "post"),
        ("/api/v1/auth/me", "get"),
        ("/api/v1/users", "get"),
        ("/api/v1/users/basic", "get"),
        ("/api/v1/users/by-email", "get"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/users/{id}", "patch"),
        ("/api/v1/users/{id}/basic", "get"),
        ("/api/v1/users/{id}/audit", "get"),
        ("/api/v1/audit", "get"),
    ];

    #[test]
    fn the_document_has_no_faults() {
        let doc = openapi();
        assert_eq!(crm_web::openapi::faults(&doc), Vec::<String>::new(), "{doc:#}");
    }

    #[test]
    fn every_route_has_its_document_entry() {
        let doc = openapi();
        let paths = doc["paths"].as_object().expect("paths");
        let documented: usize = paths.values().map(|item| item.as_object().map_or(0, |ops| ops.len())).sum();
        for (path, method) in OPERATIONS {
            assert!(paths.get(*path).and_then(|item| item.get(*method)).is_some(), "{method} {path}");
        }
        assert_eq!(documented, OPERATIONS.len(), "{:?}", paths.keys().collect::<Vec<_>>());
        assert!(doc["components"]["schemas"]["LoginResponse"].is_object());
        assert_eq!(doc["paths"]["/api/v1/users/{id}"]["patch"]["operationId"], "auth_patch_user");
    }

    #[test]
    fn defaults_follow_the_issue() {
        let c = Settings::default();
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.access_ttl, Duration::from_secs(86400));
        assert_eq!(c.refresh_ttl, Duration::from_secs(7 * 86400));
        assert_eq!(c.reset_ttl, Duration::from_secs(3600));
        assert_eq!((c.login_max_failures, c.login_window_secs), (5, 900));
        assert_eq!(c.audit_retention_days, 365);
        assert!(c.hash_concurrency >= 1);
    }
}
