//! deal-service (:8083): the sales pipeline of each tenant. Deals (tables `deals`,
//! `deal_contacts`, `deal_stage_history`) move through per-tenant stages
//! (`pipeline_stages`); responses carry the names of the referenced contact, company and
//! owner, looked up in one batch per service; pipeline totals and the forecast are
//! aggregated in SQL; every change publishes its event through the outbox.
//!
//! Layers: [`handlers`] (extract, with the permission in the signature; call one service
//! function; answer) -> [`service`] (one module per resource: rules, row scope, the
//! transaction, events, calls to contact-/auth-service through [`lookup`]) -> `repo`
//! (SQL only, on a tenant-scoped transaction). Routes and the OpenAPI document come from
//! one list ([`router`], [`openapi`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use crm_client_auth::{AuthClient, CachedAuthClient, HttpAuthClient};
use crm_client_contact::{CachedContactClient, ContactClient, HttpContactClient};
use crm_client_core::ClientConfig;
use crm_client_core::names::{NameCacheConfig, NameScopes};
use crm_runtime::{Built, SettingsError, settings};
use crm_tenant::TenantDb;
use crm_web::{AuthState, CursorCodec};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod consumers;
mod domain;
pub mod handlers;
pub mod input;
pub mod lookup;
mod repo;
pub mod service;

pub use domain::Money;
pub use lookup::Lookups;

pub const SERVICE: &str = "deal-service";
pub const DEFAULT_PORT: u16 = 8083;
/// Prefix of the durable names of this service's event consumers (keep it stable: it keys
/// `processed_events`).
pub const CONSUMER_PREFIX: &str = "deal";

/// Every setting deal-service reads, read once at start by [`Settings::from_env`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// `AUTH_SERVICE_URL` (default http://127.0.0.1:8080): owner names and checks.
    pub auth_url: String,
    /// `CONTACT_SERVICE_URL` (default http://127.0.0.1:8082): contact and company names and checks.
    pub contact_url: String,
    /// `ENRICHMENT_TIMEOUT_MS` (default 800): longest a response waits for names from
    /// contact-/auth-service.
    pub enrichment_timeout: Duration,
    /// `TRASH_PURGE_POLL_SECS` (default 3600, clamped to 1..=86,400): how often the trash
    /// purge sweeps every tenant (deals past the tenant's `trash_retention_days` go within
    /// this long after their time).
    pub trash_purge_poll: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            auth_url: settings::url("AUTH_SERVICE_URL", "http://127.0.0.1:8080")?,
            contact_url: settings::url("CONTACT_SERVICE_URL", "http://127.0.0.1:8082")?,
            enrichment_timeout: settings::millis("ENRICHMENT_TIMEOUT_MS", 800, 1)?,
            trash_purge_poll: Duration::from_secs(
                settings::number::<u64>("TRASH_PURGE_POLL_SECS", 3600, "must be a positive number (seconds)")?.clamp(1, 86_400),
            ),
        })
    }

    /// The HTTP clients of the two services, with the enrichment timeout as request timeout,
    /// behind the per-tenant name caches of `names` (`crm_client_core::names`).
    pub fn lookups(&self, names: &Arc<NameScopes>) -> Lookups {
        let client = |url: &str| ClientConfig { timeout: self.enrichment_timeout, ..ClientConfig::new(url) };
        Lookups {
            contacts: Arc::new(CachedContactClient::new(HttpContactClient::new(client(&self.contact_url)), names.clone())) as Arc<dyn ContactClient>,
            users: Arc::new(CachedAuthClient::new(HttpAuthClient::new(client(&self.auth_url)), names.clone())) as Arc<dyn AuthClient>,
            timeout: self.enrichment_timeout,
        }
    }
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: TenantDb,
    pub auth: AuthState,
    pub cursors: Arc<CursorCodec>,
    pub lookups: Arc<Lookups>,
}

/// The document's frame: info, tags and schemas. Its paths come from [`api`].
#[derive(OpenApi)]
#[openapi(
    info(title = "deal-service", description = "Sales pipeline: deals, stages, deal contacts, pipeline view, forecast"),
    tags(
        (name = "deals", description = "Deals and their contacts"),
        (name = "pipeline", description = "Pipeline view, forecast and stage configuration"),
        (name = "trash", description = "Deleted deals: list, restore, erase for good, purge after the tenant's retention (contacts and companies: contact-service)"),
    ),
    components(schemas(
        crm_client_deal::DealBasicInfo,
        crm_client_deal::DealResponse,
        crm_client_deal::DealBatch,
        crm_client_deal::StageHistoryEntry,
        crm_client_deal::PipelineViewResponse,
        crm_client_deal::PipelineStage,
        crm_client_deal::PipelineTotals,
        crm_client_deal::PipelineStageInfo,
        crm_client_deal::StageKind,
        crm_client_deal::ForecastResponse,
        crm_client_deal::ForecastPeriod,
        crm_client_deal::Unscheduled,
        crm_client_deal::ForecastTotals,
        crm_client_deal::DealContactInfo,
        crm_client_deal::DealStageChangedEvent,
        crm_client_deal::DealClosedEvent,
        crm_web::PageInfo,
        input::NewDeal,
        input::DealPatch,
        input::NewDealContact,
        input::NewStage,
        handlers::StageList,
        handlers::DealContactList,
    ))
)]
pub struct ApiDoc;

/// Routes and documented operations from ONE list (utoipa-axum): a handler is served
/// exactly where its `#[utoipa::path]` says. Handlers sharing a path share a `routes!`.
fn api() -> OpenApiRouter<AppState> {
    use handlers::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_deals, create_deal))
        .routes(routes!(batch_basic))
        .routes(routes!(pipeline))
        .routes(routes!(forecast))
        .routes(routes!(get_deal, put_deal, patch_deal, delete_deal))
        .routes(routes!(get_basic))
        .routes(routes!(list_deal_contacts, add_deal_contact))
        .routes(routes!(remove_deal_contact))
        .routes(routes!(list_stages, create_stage))
        .routes(routes!(get_stage, update_stage, delete_stage))
        .routes(routes!(trash::list_trashed_deals))
        .routes(routes!(trash::restore_deal))
        .routes(routes!(trash::erase_deal))
        .routes(routes!(trash::purge_trashed_deals))
}

/// The service's API routes (system routes and layers are added by the caller).
pub fn router(state: AppState) -> axum::Router {
    api().split_for_parts().0.with_state(state)
}

/// The finished OpenAPI document of the routes [`router`] serves.
pub fn openapi() -> serde_json::Value {
    crm_web::openapi::finish(api().split_for_parts().1, SERVICE)
}

/// The service from the shared platform pieces and its settings: its routes, its document
/// and its background tasks: the consumers of `company.deleted` and `contact.deleted`
/// ([`consumers`]), the trash purge ([`service::trash::purge_task`]) and the name cache's invalidation subscription, started by whoever serves it.
pub fn build(platform: &crm_runtime::Platform, settings: Settings) -> Built {
    // Contact, company and owner names cached per tenant, dropped by their events.
    let names = NameScopes::new(NameCacheConfig::default());
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        lookups: Arc::new(settings.lookups(&names)),
    };
    let mut tasks: Vec<crm_runtime::Task> =
        consumers::consumers(CONSUMER_PREFIX).into_iter().map(|(spec, handler)| platform.consumer_task(spec, handler)).collect();
    tasks.push(service::trash::purge_task(platform.db.clone(), settings.trash_purge_poll, platform.shutdown()));
    tasks.push(crm_runtime::Task { name: "name cache invalidation", future: Box::pin(names.follow(platform.nats.clone(), platform.shutdown())) });
    Built { name: SERVICE, router: router(state), openapi: openapi(), tasks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_has_no_structural_faults() {
        let doc = openapi();
        let faults = crm_web::openapi::faults(&doc);
        assert!(faults.is_empty(), "{faults:#?}");
        assert!(doc["components"]["schemas"]["DealResponse"].is_object());
        assert!(doc["components"]["schemas"]["NewDeal"].is_object());
    }

    #[test]
    fn every_route_has_its_document_entry() {
        let doc = openapi();
        let paths = doc["paths"].as_object().expect("paths");
        let expected: &[(&str, &[&str])] = &[
            ("/api/v1/deals", &["get", "post"]),
            ("/api/v1/deals/basic", &["get"]),
            ("/api/v1/deals/pipeline", &["get"]),
            ("/api/v1/deals/forecast", &["get"]),
            ("/api/v1/deals/{id}", &["get", "put", "patch", "delete"]),
            ("/api/v1/deals/{id}/basic", &["get"]),
            ("/api/v1/deals/{id}/contacts", &["get", "post"]),
            ("/api/v1/deals/{id}/contacts/{contact_id}", &["delete"]),
            ("/api/v1/pipeline/stages", &["get", "post"]),
            ("/api/v1/pipeline/stages/{key}", &["get", "put", "delete"]),
            ("/api/v1/trash/deals", &["get"]),
            ("/api/v1/trash/deals/{id}/restore", &["post"]),
            ("/api/v1/trash/deals/{id}", &["delete"]),
            ("/api/v1/trash/deals/purge", &["post"]),
        ];
        assert_eq!(paths.len(), expected.len(), "{:?}", paths.keys().collect::<Vec<_>>());
        for (path, methods) in expected {
            let item = paths.get(*path).unwrap_or_else(|| panic!("{path} not documented"));
            for method in *methods {
                let op = &item[*method];
                assert!(op.is_object(), "{method} {path} not documented");
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(id.starts_with("deal"), "{method} {path}: operation id {id:?}");
            }
        }
    }

    #[test]
    fn settings_name_the_variable_and_the_rule() {
        // Unset variables take their defaults.
        let s = Settings::from_env().expect("defaults");
        assert!(s.enrichment_timeout >= Duration::from_millis(1));
        let err = settings::millis("CRM_DEAL_TEST_UNSET", 0, 1).unwrap_err();
        assert_eq!(err.var, "CRM_DEAL_TEST_UNSET");
    }
}
