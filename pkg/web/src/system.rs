//! `/health`, `/ready`, `/metrics` and `/openapi.json`, the same in every service.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crm_tenant::TenantDb;
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};

use crate::observability::metrics_handle;

/// Bound on each dependency check, so a hanging dependency makes a probe fail, not hang.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A service-specific readiness condition (e.g. "tenant migrations are current").
pub trait ReadyCheck: Send + Sync {
    /// Short name shown in `/ready` (`"migrations"`).
    fn name(&self) -> &str;
    /// `Err(reason)` when the service should not take traffic yet.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// What the system routes need; built once in `main`.
#[derive(Clone)]
pub struct SystemState {
    pub service: &'static str,
    /// Usually `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    pub db: TenantDb,
    /// `None` when the service runs without NATS.
    pub nats: Option<async_nats::Client>,
    pub ready_checks: Vec<Arc<dyn ReadyCheck>>,
    /// The service's OpenAPI document (`serde_json::to_value(ApiDoc::openapi())`).
    pub openapi: Arc<Value>,
}

impl SystemState {
    fn nats_connected(&self) -> Option<bool> {
        self.nats.as_ref().map(|c| c.connection_state() == async_nats::connection::State::Connected)
    }
}

/// The system routes, with their state already applied, to merge into any service router:
/// `Router::new().merge(api).merge(system_routes(system))`. No authentication (probes and
/// scrapers call them); they reveal no error text.
pub fn system_routes<S: Clone + Send + Sync + 'static>(state: SystemState) -> Router<S> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

/// Seed 004's health shape; 503 when the database is unhealthy. A disconnected NATS only
/// degrades the status: events wait in the outbox.
async fn health(State(state): State<SystemState>) -> Response {
    let mut db = state.db.health(CHECK_TIMEOUT).await;
    if let Some(error) = db.error.take() {
        tracing::warn!(%error, "database health check failed");
    }
    let nats = state.nats_connected();
    let status = match (db.healthy, nats) {
        (false, _) => "unhealthy",
        (true, Some(false)) => "degraded",
        (true, _) => "healthy",
    };
    let code = if db.healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": status,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "version": state.version,
        "service": state.service,
        "database": db,
        "nats": { "configured": nats.is_some(), "connected": nats.unwrap_or(false) },
    });
    (code, axum::Json(body)).into_response()
}

/// 200 `{"ready": true, "checks": {...}}` when every check passes, else 503 with the reason
/// of each failed check.
async fn ready(State(state): State<SystemState>) -> Response {
    let mut checks: Vec<(String, Result<(), String>)> = Vec::new();
    let db = state.db.health(CHECK_TIMEOUT).await;
    checks.push(("database".into(), if db.healthy { Ok(()) } else { Err("unreachable".into()) }));
    if let Some(connected) = state.nats_connected() {
        checks.push(("nats".into(), if connected { Ok(()) } else { Err("not connected".into()) }));
    }
    let custom = join_all(state.ready_checks.iter().map(|c| async move {
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, c.check())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {CHECK_TIMEOUT:?}")));
        (c.name().to_owned(), outcome)
    }))
    .await;
    checks.extend(custom);

    let ready = checks.iter().all(|(_, r)| r.is_ok());
    let detail: Map<String, Value> =
        checks.into_iter().map(|(name, r)| (name, Value::from(r.err().unwrap_or_else(|| "ok".into())))).collect();
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(json!({ "ready": ready, "checks": detail }))).into_response()
}

async fn metrics() -> Response {
    let handle = metrics_handle();
    // Drains histogram samples into their buckets; cheap enough to do per scrape.
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

async fn openapi(State(state): State<SystemState>) -> Response {
    axum::Json(&*state.openapi).into_response()
}
