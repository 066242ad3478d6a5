//! tenant-service (:8081): the tenant registry, signup with schema provisioning, tenant
//! administration and invitations. Its tables live in schema `platform`.
//!
//! Layers: [`handlers`] (extract, call one service function, answer) -> [`service`] (one
//! module per resource: rules, the platform transaction, outbox events) -> `repo` (SQL
//! only, on `&PlatformTx`; the tenant schema itself is created and dropped by
//! `PlatformTx::{provision_schema, drop_schema}` in the same transaction). The spare-schema
//! refill is a background [`Task`] returned by [`build`].

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use crm_client_auth::{AuthClient, ClientConfig, HttpAuthClient};
use crm_runtime::settings::{self, SettingsError};
use crm_runtime::{Built, Platform, Task};
use crm_tenant::{TenantDb, TenantRegistry};
use crm_web::{AuthState, CursorCodec};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod domain;
pub mod handlers;
pub mod input;
mod repo;
pub mod service;
pub mod spares;


pub const SERVICE: &str = "tenant-service";
pub const DEFAULT_PORT: u16 = 8081;
/// Where export archives go when `EXPORTS_URL` is not set (relative to the working directory).
pub const DEFAULT_EXPORTS_URL: &str = "file://.data/exports";
/// communication-service's default files store (`ATTACHMENTS_URL`).
pub const DEFAULT_ATTACHMENTS_URL: &str = "file://.data/attachments";

/// Every setting tenant-service reads, read once at start by [`Settings::from_env`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TENANT_SIGNUP`: `open` (default) or `closed`; closed requires the platform operator
    /// token for signup.
    pub signup_open: bool,
    /// `SIGNUP_LIMIT_PER_HOUR` (default 10): open signups accepted per client IP and hour.
    pub signup_per_ip_per_hour: i32,
    /// `INVITATION_TTL_DAYS` (default 7).
    pub invitation_ttl: chrono::Duration,
    /// `TENANT_SPARE_SCHEMAS` (default 2): spare tenant schemas kept ready for signups; 0
    /// provisions inline on every signup.
    pub spare_schemas: i64,
    /// `AUTH_SERVICE_URL` (default `http://127.0.0.1:8080`): asked whether an email already
    /// belongs to a member before it is invited.
    pub auth_service_url: String,
    /// `EXPORTS_URL` (default [`DEFAULT_EXPORTS_URL`]): where tenant export archives are kept
    /// ([`service::exports::open_store`]).
    pub exports_url: String,
    /// `EXPORT_KEEP_DAYS` (default 7): days a finished export stays downloadable.
    pub export_keep_days: i32,
    /// `ATTACHMENTS_URL` (default [`DEFAULT_ATTACHMENTS_URL`], as communication-service): the
    /// files store whose objects under a tenant's prefix go into its export.
    pub attachments_url: String,
}

/// The defaults of the environment, except no spare schemas (tests opt in).
impl Default for Settings {
    fn default() -> Self {
        Self { signup_open: true, signup_per_ip_per_hour: 10, invitation_ttl: chrono::Duration::days(7), spare_schemas: 0, auth_service_url: "http://127.0.0.1:8080".to_owned(),
            exports_url: DEFAULT_EXPORTS_URL.to_owned(),
            export_keep_days: 7,
            attachments_url: DEFAULT_ATTACHMENTS_URL.to_owned(),
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        let signup_open = match settings::var("TENANT_SIGNUP").as_deref() {
            None | Some("open") => true,
            Some("closed") => false,
            Some(_) => return Err(SettingsError::new("TENANT_SIGNUP", "must be open or closed")),
        };
        let days: i64 = settings::number("INVITATION_TTL_DAYS", 7, "must be a whole number of days")?;
        Ok(Self {
            signup_open,
            signup_per_ip_per_hour: settings::number("SIGNUP_LIMIT_PER_HOUR", 10, "must be a whole number")?,
            invitation_ttl: chrono::Duration::days(days),
            spare_schemas: settings::number("TENANT_SPARE_SCHEMAS", 2, "must be a whole number")?,
            auth_service_url: settings::url("AUTH_SERVICE_URL", "http://127.0.0.1:8080")?,
            exports_url: {
                let url = settings::var("EXPORTS_URL").unwrap_or_else(|| DEFAULT_EXPORTS_URL.to_owned());
                service::exports::open_store(&url).map_err(|e| SettingsError::new("EXPORTS_URL", e))?;
                url
            },
            export_keep_days: settings::number("EXPORT_KEEP_DAYS", 7, "must be a whole number of days")?,
            attachments_url: {
                let url = settings::var("ATTACHMENTS_URL").unwrap_or_else(|| DEFAULT_ATTACHMENTS_URL.to_owned());
                service::exports::open_store(&url).map_err(|e| SettingsError::new("ATTACHMENTS_URL", e))?;
                url
            },
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
    /// Wakes the spare refill task after a signup took a spare.
    pub spares_taken: Arc<tokio::sync::Notify>,
    /// auth-service (at `settings.auth_service_url`; tests may put a mock here).
    pub users: Arc<dyn AuthClient>,
    /// The store of export archives and the worker's wake-up.
    pub exports: service::exports::Exports,
}

impl AppState {
    pub fn new(
        db: TenantDb,
        auth: AuthState,
        registry: Arc<TenantRegistry>,
        cursors: Arc<CursorCodec>,
        settings: Settings,
    ) -> Self {
        let users = Arc::new(HttpAuthClient::new(ClientConfig::new(settings.auth_service_url.clone())));
        let store = service::exports::open_store(&settings.exports_url).expect("EXPORTS_URL is checked by Settings::from_env");
        let files = service::exports::open_store(&settings.attachments_url).expect("ATTACHMENTS_URL is checked by Settings::from_env");
        let exports = service::exports::Exports { store, files, requested: Arc::new(tokio::sync::Notify::new()) };
        let spares_taken = Arc::new(tokio::sync::Notify::new());
        Self { db, auth, registry, cursors, settings: Arc::new(settings), spares_taken, users, exports }
    }

    /// The same state asking `users` (another auth-service, or a mock) about members.
    pub fn with_users(mut self, users: Arc<dyn AuthClient>) -> Self {
        self.users = users;
        self
    }

    /// The spare-schema refill, when spares are configured.
    pub fn tasks(&self) -> Vec<Task> {
        let exports = service::exports::worker_task(self.db.clone(), self.exports.clone(), self.settings.export_keep_days);
        let mut tasks = vec![exports];
        if self.settings.spare_schemas > 0 {
            tasks.push(spares::refill_task(self.db.clone(), self.settings.spare_schemas, self.spares_taken.clone()));
        }
        tasks
    }
}

/// Info, tags and schemas; the paths come from [`api`].
#[derive(OpenApi)]
#[openapi(
    info(title = "tenant-service", description = "Tenant registry, signup and provisioning, invitations"),
    tags((name = "tenants", description = "Signup, lookup and administration of tenants"),
        (name = "invitations", description = "Invitations to join a tenant")),
    components(schemas(
        crm_client_tenant::TenantDetails,
        crm_client_tenant::TenantBasicInfo,
        crm_client_tenant::InvitationInfo,
        crm_client_tenant::AcceptInvitation,
        crm_client_tenant::TenantSettings,
        crm_client_tenant::MarketingConsentPolicy,
        input::TenantSettingsPatch,
        input::NewTenant,
        input::TenantPatch,
        input::NewInvitation,
        service::tenants::SignupResponse,
        service::tenants::TenantLookup,
        service::exports::ExportInfo,
        crm_web::Page<crm_client_tenant::InvitationInfo>,
    ))
)]
pub struct ApiDoc;

/// Routes and documented operations from ONE list (utoipa-axum).
fn api() -> OpenApiRouter<AppState> {
    use handlers::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(signup))
        .routes(routes!(by_subdomain))
        .routes(routes!(get_tenant, patch_tenant, delete_tenant))
        .routes(routes!(get_basic))
        .routes(routes!(get_settings, patch_settings))
        .routes(routes!(start_export))
        .routes(routes!(get_export))
        .routes(routes!(download_export))
        .routes(routes!(create_invitation, list_invitations))
        .routes(routes!(revoke_invitation))
        .routes(routes!(invitation_by_token))
        .routes(routes!(accept_invitation))
}

/// The service's API routes (system routes and layers are added by the caller).
pub fn router(state: AppState) -> Router {
    api().split_for_parts().0.with_state(state)
}

/// The finished OpenAPI document as JSON.
pub fn openapi() -> serde_json::Value {
    crm_web::openapi::finish(api().split_for_parts().1, SERVICE)
}

/// The service from the shared platform pieces and its settings: routes, document and the
/// spare-schema refill task (returned, not started).
pub fn build(platform: &Platform, settings: Settings) -> Built {
    // Same database settings as the platform's pool, which were valid when it was built.
    let state = AppState::new(platform.db.clone(), platform.auth.clone(), platform.registry.clone(), platform.cursors.clone(), settings);
    let tasks = state.tasks();
    Built { name: SERVICE, router: router(state), openapi: openapi(), tasks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_sound_and_lists_every_route() {
        let doc = openapi();
        assert_eq!(crm_web::openapi::faults(&doc), Vec::<String>::new());
        let routes = [
            ("post", "/api/v1/tenants"),
            ("get", "/api/v1/tenants/by-subdomain/{subdomain}"),
            ("get", "/api/v1/tenants/{id}"),
            ("patch", "/api/v1/tenants/{id}"),
            ("delete", "/api/v1/tenants/{id}"),
            ("get", "/api/v1/tenants/{id}/basic"),
            ("get", "/api/v1/tenants/{id}/settings"),
            ("patch", "/api/v1/tenants/{id}/settings"),
            ("post", "/api/v1/tenants/{id}/export"),
            ("get", "/api/v1/tenants/{id}/exports/{export_id}"),
            ("get", "/api/v1/tenants/{id}/exports/{export_id}/archive"),
            ("post", "/api/v1/tenants/{id}/invitations"),
            ("get", "/api/v1/tenants/{id}/invitations"),
            ("delete", "/api/v1/tenants/{id}/invitations/{invitation_id}"),
            ("get", "/api/v1/invitations/{token}"),
            ("post", "/api/v1/invitations/{token}/accept"),
        ];
        let paths = doc["paths"].as_object().expect("paths");
        let documented: usize = paths.values().map(|item| item.as_object().map_or(0, |ops| ops.len())).sum();
        assert_eq!(documented, routes.len(), "{:?}", paths.keys().collect::<Vec<_>>());
        for (method, path) in routes {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{method} {path} is documented");
            assert!(op["operationId"].as_str().is_some_and(|id| id.starts_with("tenant_")), "{method} {path}");
        }
    }
}
