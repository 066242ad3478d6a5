//! contact-service (:8082): companies (with hierarchy), contacts (with lead status history),
//! typo-tolerant search, CSV import/export and tags. Tables live in each tenant's schema
//! (`db/schema/contact`); owner ids are auth-service users, validated and named through
//! its client.
//!
//! Layers: [`handlers`] (thin: extract, `Can<perm::X>` in the signature, call one service
//! function) -> [`service`] (one module per resource: rules, the transaction, events,
//! auth-service) -> [`repo`] (SQL only, on `&TenantTx`). [`import`] and [`export`] read and
//! write CSV without touching the database; [`domain`] holds the API's own types and
//! validation.

use std::sync::Arc;

use axum::extract::FromRef;
use crm_client_auth::names::{NameCacheConfig, NameScopes};
use crm_client_auth::{AuthClient, CachedAuthClient, ClientConfig, HttpAuthClient};
use crm_runtime::{Built, SettingsError, settings};
use crm_tenant::TenantDb;
use crm_web::{AuthState, CursorCodec};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod consumers;
pub mod domain;
pub mod export;
pub mod handlers;
pub mod import;
pub mod repo;
pub mod service;

pub const SERVICE: &str = "contact-service";
pub const DEFAULT_PORT: u16 = 8082;
/// Prefix of the durable names of this service's event consumers (keep it stable: it keys
/// `processed_events`).
pub const CONSUMER_PREFIX: &str = "contact";

/// Every setting of contact-service, read once at start ([`Settings::from_env`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// auth-service, which validates and names owners (`AUTH_SERVICE_URL`, default
    /// http://127.0.0.1:8080).
    pub auth_service_url: String,
    /// Largest CSV upload, 413 beyond (`CONTACT_IMPORT_MAX_MB`, default 50).
    pub import_max_bytes: usize,
    /// Rows written per statement during an import (`CONTACT_IMPORT_BATCH`, default 1000,
    /// clamped to 1..=10,000).
    pub import_batch: usize,
    /// Longest CSV line accepted (a file with a longer one is refused as malformed).
    pub import_max_line_bytes: usize,
    /// Row errors listed in an import report (all are counted).
    pub import_max_errors: usize,
    /// Contacts ranked per search (the matches beyond are not ranked; `total_count` is
    /// capped at this number) (`CONTACT_SEARCH_CANDIDATES`, default 1000, clamped to
    /// 20..=100,000).
    pub search_candidates: i64,
    /// The daily inactive-lead job: poll interval (`INACTIVE_LEAD_POLL_SECS`, default 60,
    /// clamped to 1..=3600) and contacts per tenant run (`INACTIVE_LEAD_BATCH`, default 1000,
    /// clamped to 1..=100,000).
    pub inactive_leads: service::engagement::InactiveLeadConfig,
    /// How often the trash purge sweeps every tenant (`TRASH_PURGE_POLL_SECS`, default 3600,
    /// clamped to 1..=86,400): trashed contacts and companies past the tenant's
    /// `trash_retention_days` are erased within this long after their time.
    pub trash_purge_poll: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auth_service_url: "http://127.0.0.1:8080".into(),
            import_max_bytes: 50 * 1024 * 1024,
            import_batch: 1000,
            import_max_line_bytes: 64 * 1024,
            import_max_errors: 1000,
            search_candidates: 1000,
            inactive_leads: Default::default(),
            trash_purge_poll: std::time::Duration::from_secs(3600),
        }
    }
}

impl Settings {
    /// Reads `AUTH_SERVICE_URL`, `CONTACT_IMPORT_MAX_MB`, `CONTACT_IMPORT_BATCH`,
    /// `CONTACT_SEARCH_CANDIDATES`, `INACTIVE_LEAD_POLL_SECS`, `INACTIVE_LEAD_BATCH` and
    /// `TRASH_PURGE_POLL_SECS`; unset
    /// or empty means the default.
    pub fn from_env() -> Result<Self, SettingsError> {
        let d = Self::default();
        let mb: usize = settings::number("CONTACT_IMPORT_MAX_MB", d.import_max_bytes / (1024 * 1024), "must be a positive number (megabytes)")?;
        let batch: usize = settings::number("CONTACT_IMPORT_BATCH", d.import_batch, "must be a positive number (rows)")?;
        let candidates: usize =
            settings::number("CONTACT_SEARCH_CANDIDATES", d.search_candidates as usize, "must be a positive number (contacts)")?;
        let poll: u64 = settings::number("INACTIVE_LEAD_POLL_SECS", d.inactive_leads.poll.as_secs(), "must be a positive number (seconds)")?;
        let inactive_batch: i64 = settings::number("INACTIVE_LEAD_BATCH", d.inactive_leads.batch, "must be a positive number (contacts)")?;
        let purge_poll: u64 = settings::number("TRASH_PURGE_POLL_SECS", d.trash_purge_poll.as_secs(), "must be a positive number (seconds)")?;
        let inactive_leads = service::engagement::InactiveLeadConfig {
            poll: std::time::Duration::from_secs(poll.clamp(1, 3600)),
            batch: inactive_batch.clamp(1, 100_000),
            ..d.inactive_leads.clone()
        };
        Ok(Self {
            inactive_leads,
            trash_purge_poll: std::time::Duration::from_secs(purge_poll.clamp(1, 86_400)),
            auth_service_url: settings::url("AUTH_SERVICE_URL", &d.auth_service_url)?,
            import_max_bytes: mb.saturating_mul(1024 * 1024),
            import_batch: batch.clamp(1, 10_000),
            search_candidates: candidates.clamp(20, 100_000) as i64,
            ..d
        })
    }
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: TenantDb,
    pub auth: AuthState,
    pub cursors: Arc<CursorCodec>,
    /// auth-service: validates owner ids and names owners (`HttpAuthClient` in production).
    pub users: Arc<dyn AuthClient>,
    pub settings: Arc<Settings>,
}

/// Info, tags and the schemas the operations reference but utoipa does not collect by
/// itself; the paths come from [`api`].
#[derive(OpenApi)]
#[openapi(
    info(title = "contact-service", description = "Companies, contacts, fuzzy search, CSV import/export, tags"),
    tags(
        (name = "companies", description = "Companies and their hierarchy"),
        (name = "contacts", description = "Contacts, lead status, search, CSV import/export"),
        (name = "tags", description = "Tags of contacts and companies"),
        (name = "scoring", description = "Lead scores: per-tenant scoring rules and the explanation of a contact's score"),
        (name = "trash", description = "Deleted contacts and companies: list, restore, erase for good, purge after the tenant's retention (deals: deal-service)"),
        (name = "custom-fields", description = "Typed custom field definitions: they type the `custom_fields` object of contacts and companies (per tenant, so the object's schema is open here: read the definitions)"),
    ),
    components(schemas(
        crm_client_contact::CompanyDetails,
        crm_client_contact::CompanyBasicInfo,
        crm_client_contact::CompanyBatch,
        crm_client_contact::ContactDetails,
        crm_client_contact::ContactBasicInfo,
        crm_client_contact::ContactLookup,
        crm_client_contact::Address,
        crm_client_contact::ContactStatus,
        crm_client_contact::MarketingConsent,
        crm_client_contact::ConsentRecord,
        crm_client_contact::ConsentChange,
        service::consent::ConsentInput,
        service::engagement::InactiveLeadJob,
        crm_web::PageInfo,
        domain::NewCompany,
        domain::CompanyPatch,
        domain::NewContact,
        domain::ContactPatch,
        domain::AddressInput,
        domain::ContactStats,
        domain::StatusHistoryEntry,
        domain::TagCount,
        domain::TagList,
        import::ImportReport,
        import::RowError,
        import::OnDuplicate,
        service::custom_fields::Entity,
        service::custom_fields::FieldType,
        service::merge::MergeInput,
        service::merge::ContactDuplicate,
        service::merge::CompanyDuplicate,
        service::merge::DuplicateContact,
        service::merge::DuplicateCompany,
        service::merge::DuplicateReason,
    ))
)]
pub struct ApiDoc;

/// Routes and documented operations from ONE list (utoipa-axum): a handler's
/// `#[utoipa::path]` is both its route and its documentation.
fn api() -> OpenApiRouter<AppState> {
    use handlers::{companies::*, consent::*, contacts::*, transfer::*};
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_companies, create_company))
        .routes(routes!(companies_basic))
        .routes(routes!(get_company, put_company, patch_company, delete_company))
        .routes(routes!(company_basic))
        .routes(routes!(company_children))
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(contacts_basic))
        .routes(routes!(contact_stats))
        .routes(routes!(import_contacts))
        .routes(routes!(export_contacts))
        .routes(routes!(get_contact, put_contact, patch_contact, delete_contact))
        .routes(routes!(contact_basic))
        .routes(routes!(status_history))
        .routes(routes!(get_consent, put_consent))
        .routes(routes!(inactive_lead_job))
        .routes(routes!(run_inactive_lead_job))
        .routes(routes!(list_tags))
        .routes(routes!(handlers::custom_fields::list_custom_fields, handlers::custom_fields::create_custom_field))
        .routes(routes!(handlers::custom_fields::get_custom_field, handlers::custom_fields::patch_custom_field, handlers::custom_fields::delete_custom_field))
        .routes(routes!(handlers::tags::rename_tag))
        .routes(routes!(handlers::tags::merge_tags))
        .routes(routes!(handlers::tags::delete_tag))
        .routes(routes!(handlers::merge::contact_duplicates))
        .routes(routes!(handlers::merge::company_duplicates))
        .routes(routes!(handlers::merge::merge_contacts))
        .routes(routes!(handlers::merge::merge_companies))
        .routes(routes!(handlers::scoring::contact_score))
        .routes(routes!(handlers::scoring::list_scoring_rules, handlers::scoring::create_scoring_rule))
        .routes(routes!(handlers::scoring::put_scoring_rule, handlers::scoring::delete_scoring_rule))
        .routes(routes!(handlers::trash::list_trash))
        .routes(routes!(handlers::trash::restore_contact))
        .routes(routes!(handlers::trash::restore_company))
        .routes(routes!(handlers::trash::erase_contact))
        .routes(routes!(handlers::trash::erase_company))
        .routes(routes!(handlers::trash::purge_trash))
}

/// The service's API routes (system routes and layers are added by the caller).
pub fn router(state: AppState) -> axum::Router {
    api().split_for_parts().0.with_state(state)
}

/// The finished OpenAPI document (service-prefixed operation ids, declared path
/// parameters, error schema on every error response).
pub fn openapi() -> serde_json::Value {
    crm_web::openapi::finish(api().split_for_parts().1, SERVICE)
}

/// Builds the service from the shared platform pieces and its settings (auth-service
/// reached over HTTP, its answers cached per tenant). Background tasks: the event consumers
/// ([`consumers`]), the daily inactive-lead job ([`service::engagement::inactive_lead_task`]),
/// the trash purge ([`service::trash::purge_task`])
/// and the name cache's invalidation subscription, started by whoever serves it.
pub fn build(platform: &crm_runtime::Platform, settings: Settings) -> Built {
    let inactive_leads = settings.inactive_leads.clone();
    let purge_poll = settings.trash_purge_poll;
    // Owner names cached per tenant, dropped by `user.*` events (crm_client_core::names).
    let names = NameScopes::new(NameCacheConfig::default());
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        users: Arc::new(CachedAuthClient::new(HttpAuthClient::new(ClientConfig::new(settings.auth_service_url.clone())), names.clone())),
        settings: Arc::new(settings),
    };
    let mut tasks: Vec<crm_runtime::Task> =
        consumers::consumers(CONSUMER_PREFIX).into_iter().map(|(spec, handler)| platform.consumer_task(spec, handler)).collect();
    tasks.push(service::engagement::inactive_lead_task(platform.db.clone(), inactive_leads, platform.shutdown()));
    tasks.push(service::trash::purge_task(platform.db.clone(), purge_poll, platform.shutdown()));
    tasks.push(crm_runtime::Task { name: "name cache invalidation", future: Box::pin(names.follow(platform.nats.clone(), platform.shutdown())) });
    Built { name: SERVICE, router: router(state), openapi: openapi(), tasks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_sound_and_documents_every_route() {
        let doc = openapi();
        let faults = crm_web::openapi::faults(&doc);
        assert!(faults.is_empty(), "{faults:#?}");
        let documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| item.as_object().expect("path item").keys().map(move |m| (m.to_uppercase(), path.clone())))
            .filter(|(m, _)| ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()))
            .collect();
        let expected = [
            ("GET", "/api/v1/companies"),
            ("POST", "/api/v1/companies"),
            ("GET", "/api/v1/companies/basic"),
            ("GET", "/api/v1/companies/{id}"),
            ("PUT", "/api/v1/companies/{id}"),
            ("PATCH", "/api/v1/companies/{id}"),
            ("DELETE", "/api/v1/companies/{id}"),
            ("GET", "/api/v1/companies/{id}/basic"),
            ("GET", "/api/v1/companies/{id}/children"),
            ("GET", "/api/v1/contacts"),
            ("POST", "/api/v1/contacts"),
            ("GET", "/api/v1/contacts/basic"),
            ("GET", "/api/v1/contacts/stats"),
            ("POST", "/api/v1/contacts/import"),
            ("GET", "/api/v1/contacts/export"),
            ("GET", "/api/v1/contacts/{id}"),
            ("PUT", "/api/v1/contacts/{id}"),
            ("PATCH", "/api/v1/contacts/{id}"),
            ("DELETE", "/api/v1/contacts/{id}"),
            ("GET", "/api/v1/contacts/{id}/basic"),
            ("GET", "/api/v1/contacts/{id}/status-history"),
            ("GET", "/api/v1/contacts/{id}/consent"),
            ("PUT", "/api/v1/contacts/{id}/consent"),
            ("GET", "/api/v1/contacts/inactive-lead-job"),
            ("POST", "/api/v1/contacts/inactive-lead-job/run"),
            ("GET", "/api/v1/tags"),
            ("GET", "/api/v1/custom-fields"),
            ("POST", "/api/v1/custom-fields"),
            ("GET", "/api/v1/custom-fields/{id}"),
            ("PATCH", "/api/v1/custom-fields/{id}"),
            ("DELETE", "/api/v1/custom-fields/{id}"),
            ("POST", "/api/v1/tags/rename"),
            ("POST", "/api/v1/tags/merge"),
            ("DELETE", "/api/v1/tags/{tag}"),
            ("GET", "/api/v1/contacts/duplicates"),
            ("GET", "/api/v1/companies/duplicates"),
            ("POST", "/api/v1/contacts/{id}/merge"),
            ("POST", "/api/v1/companies/{id}/merge"),
            ("GET", "/api/v1/contacts/{id}/score"),
            ("GET", "/api/v1/scoring/rules"),
            ("POST", "/api/v1/scoring/rules"),
            ("PUT", "/api/v1/scoring/rules/{id}"),
            ("DELETE", "/api/v1/scoring/rules/{id}"),
            ("GET", "/api/v1/trash"),
            ("POST", "/api/v1/trash/contacts/{id}/restore"),
            ("POST", "/api/v1/trash/companies/{id}/restore"),
            ("DELETE", "/api/v1/trash/contacts/{id}"),
            ("DELETE", "/api/v1/trash/companies/{id}"),
            ("POST", "/api/v1/trash/purge"),
        ];
        for (method, path) in expected {
            assert!(documented.contains(&(method.to_owned(), path.to_owned())), "{method} {path} is not documented");
        }
        assert_eq!(documented.len(), expected.len(), "{documented:?}");
        for op in doc["paths"].as_object().expect("paths").values().flat_map(|item| item.as_object().expect("item").values()) {
            assert!(op["operationId"].as_str().is_some_and(|id| id.starts_with("contact_")), "{op}");
        }
        assert!(doc["components"]["schemas"]["OnDuplicate"].is_object());
    }

    #[tokio::test]
    async fn every_documented_operation_is_routed() {
        use tower::ServiceExt;
        // Without state the handlers cannot run, but routing answers before them: an
        // undocumented or unrouted path is 404/405 from the router, a routed one is 401
        // (no token) from the permission extractor.
        let keys = crm_web::JwtKeys::new(b"contact-service-unit-test-secret-0123456789", "crm");
        let state = AppState {
            db: TenantDb::new(lazy_pool()),
            auth: AuthState::new(keys),
            cursors: Arc::new(CursorCodec::new(b"unit")),
            users: Arc::new(crm_client_auth::MockAuthClient::default()),
            settings: Arc::new(Settings::default()),
        };
        let app = router(state);
        let doc = openapi();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("item").keys() {
                let uri = path.replace("{id}", "1");
                let req = axum::http::Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .body(axum::body::Body::empty())
                    .expect("request");
                let status = app.clone().oneshot(req).await.expect("response").status();
                assert_eq!(status, axum::http::StatusCode::UNAUTHORIZED, "{method} {uri}");
            }
        }
    }

    /// A pool that never connects (no request in the test reaches the database).
    fn lazy_pool() -> crm_database::Pool {
        crm_database::create_pool(&crm_database::DbConfig::default()).expect("pool")
    }
}
