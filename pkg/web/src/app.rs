//! The layers every service's router ends with, CORS, and serving.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::X_TENANT_ID;
use crate::error::{ApiError, codes};
use crate::observability::{metrics_handle, observe};
use crate::request_id::X_REQUEST_ID;

/// Request body limit and processing deadline.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body accepted (413 beyond). Default 1 MiB.
    pub body_bytes: usize,
    /// Time a request may take before it is answered with 503 `TIMEOUT`. Default 30 s.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { body_bytes: 1024 * 1024, timeout: Duration::from_secs(30) }
    }
}

/// [`finish_router_with`] with the default [`Limits`].
pub fn finish_router(router: Router, service: &'static str, cors: CorsConfig) -> Router {
    finish_router_with(router, service, cors, Limits::default())
}

/// Adds to a service's complete router (call it last: later routes would miss the layers):
/// 404/405 fallbacks, body limit, timeout, error reshaping, CORS, and the request id / log
/// line / metrics middleware. Every error that leaves the service is in our shape.
pub fn finish_router_with(router: Router, service: &'static str, cors: CorsConfig, limits: Limits) -> Router {
    // Installs the recorder, so the metrics recorded below are not lost even if the service
    // has no /metrics route.
    metrics_handle();
    let timeout = limits.timeout;
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, codes::METHOD_NOT_ALLOWED, "method not allowed")
        })
        // Innermost first: each `.layer` wraps the ones before it.
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn(move |req: Request, next: Next| deadline(timeout, req, next)))
        .layer(middleware::from_fn(shape_errors))
        .layer(cors.layer())
        .layer(middleware::from_fn_with_state(service, observe))
}

async fn deadline(timeout: Duration, req: Request, next: Next) -> Response {
    tokio::time::timeout(timeout, next.run(req)).await.unwrap_or_else(|_| {
        tracing::warn!(timeout_secs = timeout.as_secs(), "request timed out");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, codes::TIMEOUT, "request timed out").into_response()
    })
}

/// Largest framework error body read back when reshaping it.
const MAX_REJECTION_BODY: usize = 4096;

/// Rewrites non-JSON error responses (axum's own rejections of extractors used without our
/// wrappers, a body over the limit, a failed response serialization) into our shape. JSON
/// error bodies are deliberate (an [`ApiError`], `/health`'s 503) and left alone. Client
/// errors keep the framework's message, which is meant for clients; server errors get the
/// generic one.
async fn shape_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let error = if status.is_server_error() {
        ApiError::internal(format!("unshaped {status} response"))
    } else {
        let text = axum::body::to_bytes(body, MAX_REJECTION_BODY).await.unwrap_or_default();
        let message = String::from_utf8_lossy(&text).trim().to_owned();
        let message = if message.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { message };
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
            _ => ApiError::new(status, codes::for_status(status), message),
        }
    };
    let mut reshaped = error.into_response();
    // Keep headers such as `Allow` or `Retry-After`, but not the old body's framing.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            reshaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *reshaped.status_mut() = status;
    reshaped
}

/// Allowed CORS origins, from `CORS_ALLOWED_ORIGINS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsConfig {
    any: bool,
    exact: Vec<String>,
    /// `(prefix, suffix)` of `https://*.crm.example.com`: `("https://", ".crm.example.com")`.
    wildcard: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCorsOrigin(pub String);

impl std::fmt::Display for InvalidCorsOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid entry {:?} in CORS_ALLOWED_ORIGINS: expected `*`, `scheme://host[:port]` or `scheme://*.domain[:port]`",
            self.0
        )
    }
}

impl std::error::Error for InvalidCorsOrigin {}

impl CorsConfig {
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins. `https://*.crm.example.com` allows any
    /// single label in place of `*` (every tenant subdomain); `*` allows every origin (for
    /// development). Unset or empty: no cross-origin access.
    pub fn from_env() -> Result<Self, InvalidCorsOrigin> {
        Self::parse(&std::env::var("CORS_ALLOWED_ORIGINS").unwrap_or_default())
    }

    pub fn parse(list: &str) -> Result<Self, InvalidCorsOrigin> {
        let mut config = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let origin = entry.trim_end_matches('/').to_ascii_lowercase();
            if origin == "*" {
                config.any = true;
                continue;
            }
            let (scheme, host) = origin.split_once("://").ok_or_else(|| InvalidCorsOrigin(entry.to_owned()))?;
            let valid_host = |h: &str| !h.is_empty() && !h.contains(['/', '*', '?', '#', '@']);
            match host.strip_prefix("*.") {
                Some(rest) if valid_host(rest) => config.wildcard.push((format!("{scheme}://"), format!(".{rest}"))),
                None if valid_host(host) && !scheme.is_empty() => config.exact.push(origin),
                _ => return Err(InvalidCorsOrigin(entry.to_owned())),
            }
        }
        Ok(config)
    }

    /// Whether a request from `origin` may read our responses.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.any
            || self.exact.contains(&origin)
            || self.wildcard.iter().any(|(prefix, suffix)| {
                origin
                    .strip_prefix(prefix.as_str())
                    .and_then(|o| o.strip_suffix(suffix.as_str()))
                    .is_some_and(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            })
    }

    /// The tower-http layer: our methods and headers, `X-Request-ID` exposed. No credentials
    /// mode: auth is a bearer header, not a cookie.
    pub fn layer(&self) -> CorsLayer {
        let origins = if self.any {
            AllowOrigin::any()
        } else {
            let config = self.clone();
            AllowOrigin::predicate(move |origin: &HeaderValue, _| origin.to_str().is_ok_and(|o| config.allows(o)))
        };
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, X_REQUEST_ID.clone(), X_TENANT_ID.clone()])
            .expose_headers([X_REQUEST_ID.clone()])
            .max_age(Duration::from_secs(600))
    }
}

/// Serves `router` until `shutdown` resolves, then finishes in-flight requests. Handlers
/// can extract `ConnectInfo<SocketAddr>` (per-IP rate limits).
pub async fn serve(
    router: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM (Kubernetes' stop signal): pass it to [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins() {
        let c = CorsConfig::parse("https://*.crm.example.com, http://localhost:3000/").unwrap();
        assert!(c.allows("https://acme.crm.example.com"));
        assert!(c.allows("https://ACME.crm.example.com"));
        assert!(c.allows("http://localhost:3000"));
        for bad in [
            "https://evil.com",
            "https://crm.example.com",
            "https://.crm.example.com",
            "https://a.b.crm.example.com",
            "http://acme.crm.example.com",
            "https://acme.crm.example.com.evil.com",
            "https://evilcrm.example.com",
            "http://localhost:3001",
        ] {
            assert!(!c.allows(bad), "{bad}");
        }
        assert!(CorsConfig::parse("*").unwrap().allows("https://anything.io"));
        assert!(!CorsConfig::parse("").unwrap().allows("https://anything.io"));
        for bad in ["acme.com", "https://", "https://*", "https://a/*"] {
            assert!(CorsConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
