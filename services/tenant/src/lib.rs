//! tenant-service (:8081): the tenant registry, signup with schema provisioning, tenant
//! administration and invitations. Its tables live in schema `platform`.

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use crm_tenant::{TenantDb, TenantRegistry};
use crm_web::{AuthState, CursorCodec};
use utoipa::OpenApi;

mod domain;
pub mod handlers;
mod repo;
pub mod spares;

pub const SERVICE: &str = "tenant-service";
pub const DEFAULT_PORT: u16 = 8081;

/// Settings of tenant-service (env: `TENANT_SIGNUP`, `SIGNUP_LIMIT_PER_HOUR`, `INVITATION_TTL_DAYS`).
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// `TENANT_SIGNUP=closed` requires the platform operator token for signup.
    pub signup_open: bool,
    /// Open signups accepted per client IP and hour.
    pub signup_per_ip_per_hour: i32,
    pub invitation_ttl: chrono::Duration,
    /// Spare tenant schemas kept ready for signups (`TENANT_SPARE_SCHEMAS`); 0 provisions
    /// inline on every signup.
    pub spare_schemas: i64,
}

impl Default for TenantConfig {
    fn default() -> Self {
        Self { signup_open: true, signup_per_ip_per_hour: 10, invitation_ttl: chrono::Duration::days(7), spare_schemas: 0 }
    }
}

impl TenantConfig {
    pub fn from_env() -> Result<Self, String> {
        let mut config = Self::default();
        match std::env::var("TENANT_SIGNUP").as_deref() {
            Err(_) | Ok("") | Ok("open") => {}
            Ok("closed") => config.signup_open = false,
            Ok(other) => return Err(format!("TENANT_SIGNUP must be open or closed, got {other:?}")),
        }
        if let Ok(v) = std::env::var("SIGNUP_LIMIT_PER_HOUR") {
            config.signup_per_ip_per_hour = v.parse().map_err(|_| format!("SIGNUP_LIMIT_PER_HOUR must be a number, got {v:?}"))?;
        }
        config.spare_schemas = match std::env::var("TENANT_SPARE_SCHEMAS") {
            Ok(v) => v.parse().map_err(|_| format!("TENANT_SPARE_SCHEMAS must be a number, got {v:?}"))?,
            Err(_) => 2,
        };
        if let Ok(v) = std::env::var("INVITATION_TTL_DAYS") {
            let days: i64 = v.parse().map_err(|_| format!("INVITATION_TTL_DAYS must be a number, got {v:?}"))?;
            config.invitation_ttl = chrono::Duration::days(days);
        }
        Ok(config)
    }
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: TenantDb,
    pub auth: AuthState,
    pub registry: Arc<TenantRegistry>,
    pub cursors: Arc<CursorCodec>,
    pub config: Arc<TenantConfig>,
    /// Wakes the spare refill task after a signup took a spare.
    pub spares_taken: Arc<tokio::sync::Notify>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tenant-service", description = "Tenant registry, signup and provisioning, invitations"),
    paths(
        handlers::signup,
        handlers::by_subdomain,
        handlers::get_tenant,
        handlers::get_basic,
        handlers::patch_tenant,
        handlers::delete_tenant,
        handlers::create_invitation,
        handlers::list_invitations,
        handlers::revoke_invitation,
        handlers::invitation_by_token,
        handlers::accept_invitation,
    ),
    components(schemas(crm_client_tenant::TenantDetails, crm_client_tenant::TenantBasicInfo, crm_client_tenant::InvitationInfo))
)]
pub struct ApiDoc;

impl AppState {
    pub fn new(db: TenantDb, auth: AuthState, registry: Arc<TenantRegistry>, cursors: Arc<CursorCodec>, config: TenantConfig) -> Self {
        Self { db, auth, registry, cursors, config: Arc::new(config), spares_taken: Arc::new(tokio::sync::Notify::new()) }
    }
}

/// Builds the service's state from the shared platform pieces and returns its API routes.
pub fn build(platform: &crm_runtime::Platform) -> Result<Router, String> {
    let state = AppState::new(
        platform.db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        TenantConfig::from_env()?,
    );
    if state.config.spare_schemas > 0 {
        spares::spawn_refill(state.db.clone(), state.config.spare_schemas, state.spares_taken.clone());
    }
    Ok(router(state))
}

/// The OpenAPI document as JSON.
pub fn openapi() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// The service's API routes (system routes and layers are added by the caller).
pub fn router(state: AppState) -> Router {
    use handlers::*;
    Router::new()
        .route("/api/v1/tenants", post(signup))
        .route("/api/v1/tenants/by-subdomain/{subdomain}", get(by_subdomain))
        .route("/api/v1/tenants/{id}", get(get_tenant).patch(patch_tenant).delete(delete_tenant))
        .route("/api/v1/tenants/{id}/basic", get(get_basic))
        .route("/api/v1/tenants/{id}/invitations", post(create_invitation).get(list_invitations))
        .route("/api/v1/tenants/{id}/invitations/{invitation_id}", axum::routing::delete(revoke_invitation))
        .route("/api/v1/invitations/{token}", get(invitation_by_token))
        .route("/api/v1/invitations/{token}/accept", post(accept_invitation))
        .with_state(state)
}
