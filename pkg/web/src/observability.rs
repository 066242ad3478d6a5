//! Logs and metrics: tracing set-up, one log line and two metrics per request.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_subscriber::EnvFilter;

use crate::request_id::{self, X_REQUEST_ID};

/// Histogram buckets of `http_request_duration_seconds`, from 5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the global tracing subscriber: level from `LOG_LEVEL` (default `info`, any
/// `EnvFilter` directive works), JSON lines unless `LOG_FORMAT=pretty`. Idempotent: a second
/// call (tests, the all-in-one binary starting several services) is a no-op.
pub fn init_tracing(service: &str) {
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".to_owned());
    let mut filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Capped whatever LOG_LEVEL says: tokio-postgres logs statement parameters at DEBUG
    // (password and token hashes) and async-nats whole messages at TRACE (reset tokens).
    for directive in ["tokio_postgres=info", "async_nats=info"] {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("pretty")) {
        builder.pretty().try_init()
    } else {
        // Event fields at the top level; the request span's fields (request_id, tenant_id,
        // user_id, method, route) under "span".
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    };
    if installed.is_ok() {
        tracing::info!(service, log_level = %level, "logging initialised");
    }
}

/// The Prometheus recorder's handle. The first call installs the global recorder; later
/// calls return the same handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".to_owned()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            builder.install_recorder().unwrap_or_else(|e| {
                // Someone else installed a global recorder first: /metrics renders nothing
                // of ours, but the service still runs.
                tracing::warn!(error = %e, "could not install the Prometheus recorder");
                PrometheusBuilder::new().build_recorder().handle()
            })
        })
        .clone()
}

/// The route template (`/contacts/{id}`), never the raw path, so metric labels stay bounded.
fn route_label(req: &Request) -> String {
    req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned())
}

/// Standard methods by name, anything else lumped together (bounded label values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    }
}

/// The outermost middleware of every service (installed by [`crate::finish_router`]):
///
/// * takes the request id from `X-Request-ID` or generates one, makes it current for the
///   whole request (task-local) and echoes it on the response;
/// * runs the request in a `request` span (request_id, method, route; tenant_id and user_id
///   are filled in by the `AuthUser` extractor), so every log line of the request has them;
/// * logs one line per request with status and latency;
/// * records `http_requests_total` and `http_request_duration_seconds`.
pub async fn observe(State(service): State<&'static str>, mut req: Request, next: Next) -> Response {
    let id = request_id::accept_or_generate(req.headers().get(&X_REQUEST_ID));
    let header = HeaderValue::from_str(&id).ok();
    if let Some(value) = &header {
        // Handlers and forwarding clients reading the header see the id actually used.
        req.headers_mut().insert(X_REQUEST_ID.clone(), value.clone());
    }
    let method = method_label(req.method());
    let route = route_label(&req);
    let span = tracing::info_span!(
        "request",
        service,
        request_id = %id,
        method,
        route = %route,
        tenant_id = Empty,
        user_id = Empty,
    );

    let started = Instant::now();
    let mut response = request_id::scope(id, next.run(req).instrument(span.clone())).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();

    span.in_scope(|| tracing::info!(status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request completed"));
    let labels = [("service", service.to_owned()), ("method", method.to_owned()), ("route", route), ("status", status.to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());

    if let Some(value) = header {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}
