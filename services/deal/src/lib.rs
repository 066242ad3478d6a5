//! deal-service (:8083): the sales pipeline of each tenant. Deals (tables `deals`,
//! `deal_contacts`, `deal_stage_history`) move through per-tenant stages
//! (`pipeline_stages`); responses carry the names of the referenced contact, company and
//! owner, looked up in one batch per service; pipeline totals and the forecast are
//! aggregated in SQL; every change publishes its event through the outbox.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use crm_client_auth::{AuthClient, HttpAuthClient};
use crm_client_contact::{ContactClient, HttpContactClient};
use crm_client_core::ClientConfig;
use crm_tenant::TenantDb;
use crm_web::{AuthState, CursorCodec};
use utoipa::OpenApi;

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

/// Settings of deal-service (env: `AUTH_SERVICE_URL`, `CONTACT_SERVICE_URL`,
/// `ENRICHMENT_TIMEOUT_MS`).
#[derive(Debug, Clone)]
pub struct DealConfig {
    pub auth_url: String,
    pub contact_url: String,
    /// Longest a response waits for names from contact-/auth-service (default 800 ms).
    pub enrichment_timeout: Duration,
}

impl DealConfig {
    pub fn from_env() -> Result<Self, String> {
        let url = |var: &str, default: &str| std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned());
        let timeout_ms = match std::env::var("ENRICHMENT_TIMEOUT_MS") {
            Ok(v) if !v.trim().is_empty() => {
                v.trim().parse::<u64>().map_err(|_| format!("ENRICHMENT_TIMEOUT_MS must be a number, got {v:?}"))?
            }
            _ => 800,
        };
        Ok(Self {
            auth_url: url("AUTH_SERVICE_URL", "http://127.0.0.1:8080"),
            contact_url: url("CONTACT_SERVICE_URL", "http://127.0.0.1:8082"),
            enrichment_timeout: Duration::from_millis(timeout_ms),
        })
    }

    /// The HTTP clients of the two services, with the enrichment timeout as request timeout.
    pub fn lookups(&self) -> Lookups {
        let client = |url: &str| ClientConfig { timeout: self.enrichment_timeout, ..ClientConfig::new(url) };
        Lookups {
            contacts: Arc::new(HttpContactClient::new(client(&self.contact_url))) as Arc<dyn ContactClient>,
            users: Arc::new(HttpAuthClient::new(client(&self.auth_url))) as Arc<dyn AuthClient>,
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

#[derive(OpenApi)]
#[openapi(
    info(title = "deal-service", description = "Sales pipeline: deals, stages, deal contacts, pipeline view, forecast"),
    paths(
        handlers::create_deal,
        handlers::list_deals,
        handlers::get_deal,
        handlers::put_deal,
        handlers::patch_deal,
        handlers::delete_deal,
        handlers::get_basic,
        handlers::batch_basic,
        handlers::pipeline,
        handlers::forecast,
        handlers::add_deal_contact,
        handlers::list_deal_contacts,
        handlers::remove_deal_contact,
        handlers::list_stages,
        handlers::create_stage,
        handlers::update_stage,
        handlers::delete_stage,
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
        input::DealInput,
        input::DealPatch,
        input::DealContactInput,
        input::StageConfigInput,
        handlers::StageList,
        handlers::DealContactList,
    ))
)]
pub struct ApiDoc;

/// Builds the service's state from the shared platform pieces and returns its API routes.
pub fn build(platform: &crm_runtime::Platform) -> Result<Router, String> {
    let config = DealConfig::from_env()?;
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        lookups: Arc::new(config.lookups()),
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
        .route("/api/v1/deals", get(list_deals).post(create_deal))
        .route("/api/v1/deals/basic", get(batch_basic))
        .route("/api/v1/deals/pipeline", get(pipeline))
        .route("/api/v1/deals/forecast", get(forecast))
        .route("/api/v1/deals/{id}", get(get_deal).put(put_deal).patch(patch_deal).delete(delete_deal))
        .route("/api/v1/deals/{id}/basic", get(get_basic))
        .route("/api/v1/deals/{id}/contacts", get(list_deal_contacts).post(add_deal_contact))
        .route("/api/v1/deals/{id}/contacts/{contact_id}", axum::routing::delete(remove_deal_contact))
        .route("/api/v1/pipeline/stages", get(list_stages).post(create_stage))
        .route("/api/v1/pipeline/stages/{key}", axum::routing::put(update_stage).delete(delete_stage))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc = super::openapi();
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/api/v1/deals",
            "/api/v1/deals/{id}",
            "/api/v1/deals/basic",
            "/api/v1/deals/{id}/basic",
            "/api/v1/deals/pipeline",
            "/api/v1/deals/forecast",
            "/api/v1/deals/{id}/contacts",
            "/api/v1/deals/{id}/contacts/{contact_id}",
            "/api/v1/pipeline/stages",
            "/api/v1/pipeline/stages/{key}",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
        assert!(doc["components"]["schemas"]["DealResponse"].is_object());
    }
}
