//! contact-service (:8082): companies (with hierarchy), contacts (with lead status history),
//! typo-tolerant search, CSV import/export and tags. Tables live in each tenant's schema
//! (`db/schema/contact`); owner ids are auth-service users, validated and named through
//! its client.

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use crm_client_auth::AuthClient;
use crm_tenant::TenantDb;
use crm_web::{AuthState, CursorCodec};
use utoipa::OpenApi;

pub mod domain;
pub mod handlers;
pub mod import;
mod owners;
pub mod repo;

pub const SERVICE: &str = "contact-service";
pub const DEFAULT_PORT: u16 = 8082;

/// Settings of contact-service (env: `CONTACT_IMPORT_MAX_MB`, `CONTACT_IMPORT_BATCH`,
/// `CONTACT_SEARCH_CANDIDATES`).
#[derive(Debug, Clone)]
pub struct ContactConfig {
    /// Largest CSV upload (413 beyond).
    pub import_max_bytes: usize,
    /// Rows written per statement during an import.
    pub import_batch: usize,
    /// Longest CSV line accepted (a file with a longer one is refused as malformed).
    pub import_max_line_bytes: usize,
    /// Row errors listed in an import report (all are counted).
    pub import_max_errors: usize,
    /// Contacts ranked per search (the matches beyond are not ranked; `total_count` is
    /// capped at this number).
    pub search_candidates: i64,
}

impl Default for ContactConfig {
    fn default() -> Self {
        Self {
            import_max_bytes: 50 * 1024 * 1024,
            import_batch: 1000,
            import_max_line_bytes: 64 * 1024,
            import_max_errors: 1000,
            search_candidates: 1000,
        }
    }
}

impl ContactConfig {
    pub fn from_env() -> Result<Self, String> {
        let mut config = Self::default();
        let num = |name: &str| -> Result<Option<usize>, String> {
            match std::env::var(name) {
                Ok(v) if !v.is_empty() => v.parse().map(Some).map_err(|_| format!("{name} must be a positive number, got {v:?}")),
                _ => Ok(None),
            }
        };
        if let Some(mb) = num("CONTACT_IMPORT_MAX_MB")? {
            config.import_max_bytes = mb * 1024 * 1024;
        }
        if let Some(n) = num("CONTACT_IMPORT_BATCH")? {
            config.import_batch = n.clamp(1, 10_000);
        }
        if let Some(n) = num("CONTACT_SEARCH_CANDIDATES")? {
            config.search_candidates = n.clamp(20, 100_000) as i64;
        }
        Ok(config)
    }
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: TenantDb,
    pub auth: AuthState,
    pub cursors: Arc<CursorCodec>,
    /// auth-service: validates owner ids and names owners (`HttpAuthClient` in production).
    pub users: Arc<dyn AuthClient>,
    pub config: Arc<ContactConfig>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "contact-service", description = "Companies, contacts, fuzzy search, CSV import/export, tags"),
    paths(
        handlers::companies::create_company,
        handlers::companies::list_companies,
        handlers::companies::get_company,
        handlers::companies::put_company,
        handlers::companies::patch_company,
        handlers::companies::delete_company,
        handlers::companies::company_basic,
        handlers::companies::companies_basic,
        handlers::companies::company_children,
        handlers::contacts::create_contact,
        handlers::contacts::list_contacts,
        handlers::contacts::get_contact,
        handlers::contacts::put_contact,
        handlers::contacts::patch_contact,
        handlers::contacts::delete_contact,
        handlers::contacts::contact_basic,
        handlers::contacts::contacts_basic,
        handlers::contacts::status_history,
        handlers::contacts::contact_stats,
        handlers::contacts::list_tags,
        handlers::transfer::import_contacts,
        handlers::transfer::export_contacts,
    ),
    components(schemas(
        crm_client_contact::CompanyDetails,
        crm_client_contact::CompanyBasicInfo,
        crm_client_contact::ContactDetails,
        crm_client_contact::ContactBasicInfo,
        crm_client_contact::Address,
        crm_client_contact::ContactStatus,
        domain::CompanyInput,
        domain::CompanyPatch,
        domain::ContactInput,
        domain::ContactPatch,
        domain::AddressInput,
        import::ImportReport,
        import::RowError,
    ))
)]
pub struct ApiDoc;

/// The service's API routes (system routes and layers are added by the caller).
/// Builds the service from the shared platform pieces (auth-service reached over HTTP at
/// `AUTH_SERVICE_URL`) and returns its API routes.
pub fn build(platform: &crm_runtime::Platform) -> Result<Router, String> {
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        users: std::sync::Arc::new(crm_client_auth::HttpAuthClient::from_env()),
        config: std::sync::Arc::new(ContactConfig::from_env()?),
    };
    Ok(router(state))
}

/// The OpenAPI document as JSON.
pub fn openapi() -> serde_json::Value {
    use utoipa::OpenApi;
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

pub fn router(state: AppState) -> Router {
    use handlers::{companies::*, contacts::*, transfer::*};
    Router::new()
        .route("/api/v1/companies", post(create_company).get(list_companies))
        .route("/api/v1/companies/basic", get(companies_basic))
        .route("/api/v1/companies/{id}", get(get_company).put(put_company).patch(patch_company).delete(delete_company))
        .route("/api/v1/companies/{id}/basic", get(company_basic))
        .route("/api/v1/companies/{id}/children", get(company_children))
        .route("/api/v1/contacts", post(create_contact).get(list_contacts))
        .route("/api/v1/contacts/basic", get(contacts_basic))
        .route("/api/v1/contacts/stats", get(contact_stats))
        .route("/api/v1/contacts/import", post(import_contacts))
        .route("/api/v1/contacts/export", get(export_contacts))
        .route("/api/v1/contacts/{id}", get(get_contact).put(put_contact).patch(patch_contact).delete(delete_contact))
        .route("/api/v1/contacts/{id}/basic", get(contact_basic))
        .route("/api/v1/contacts/{id}/status-history", get(status_history))
        .route("/api/v1/tags", get(list_tags))
        .with_state(state)
}
