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
}

impl Default for TenantConfig {
    fn default() -> Self {
        Self { signup_open: true, signup_per_ip_per_hour: 10, invitation_ttl: chrono::Duration::days(7) }
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

/// Builds the service's state from the shared platform pieces and returns its API routes.
pub fn build(platform: &crm_runtime::Platform) -> Result<Router, String> {
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        registry: platform.registry.clone(),
        cursors: platform.cursors.clone(),
        config: Arc::new(TenantConfig::from_env()?),
    };
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
