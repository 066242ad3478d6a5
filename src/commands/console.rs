//! The web console (`web/`, Vue 3) on the combined port of `crm serve`: its built files at `/`,
//! beside the API at `/api/v1`.
//!
//! * `CONSOLE_DIR` (default `web/dist`, relative to the working directory, else to the
//!   repository the binary was built from) holds `npm run build`'s output; `scripts/run.sh`
//!   builds it before serving.
//! * A path that names no file is a route of the single-page app: it gets `index.html` (so a
//!   reload of `/contacts/42` works), except under `/api/` (the API's JSON 404) and
//!   `/assets/` (a missing bundle is a 404, not a page that fails to parse as JavaScript).
//! * Hashed bundles under `/assets/` are cached for a year (`immutable`); `index.html` is
//!   revalidated on every load (`no-cache`) so a new release is picked up at once.
//! * Only `GET` and `HEAD` reach files; other methods on a non-API path answer 405.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use crm_web::{ApiError, codes};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// `Cache-Control` of the content-hashed bundles under `/assets/`.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else (`index.html`, icons): revalidate on every load.
const REVALIDATE: &str = "no-cache";

/// Where the built console is: `CONSOLE_DIR`, else `web/dist` under the working directory,
/// else under the source tree this binary was built from. `None` when none of them has an
/// `index.html` (the console was not built: the API still serves).
pub fn dir_from_env() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var("CONSOLE_DIR").ok().filter(|v| !v.is_empty()) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![PathBuf::from("web/dist"), Path::new(env!("CARGO_MANIFEST_DIR")).join("web/dist")],
    };
    candidates.into_iter().find(|dir| dir.join("index.html").is_file())
}

/// Routes that serve the console from `dir` (or explain how to build it when `None`), for the
/// combined router: a catch-all, so every API route, matched first, is unaffected.
pub fn routes(dir: Option<PathBuf>) -> Router {
    let dir = Arc::new(dir);
    let handler = move |req: Request| {
        let dir = dir.clone();
        async move { serve(dir.as_ref().as_deref(), req).await }
    };
    Router::new().route("/", any(handler.clone())).route("/{*path}", any(handler))
}

async fn serve(dir: Option<&Path>, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such route").into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, codes::METHOD_NOT_ALLOWED, "method not allowed").into_response();
    }
    let Some(dir) = dir else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            "the web console is not built: run `npm ci && npm run build` in web/ (scripts/run.sh does), or set CONSOLE_DIR",
        )
        .into_response();
    };
    let is_asset = path.starts_with("/assets/");
    let result = if is_asset {
        ServeDir::new(dir).oneshot(req).await.map(|r| r.map(Body::new))
    } else {
        ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html"))).oneshot(req).await.map(|r| r.map(Body::new))
    };
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "reading the console's files");
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, "internal error").into_response();
        }
    };
    if response.status() == StatusCode::NOT_FOUND {
        return ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such file").into_response();
    }
    let cache = if is_asset && response.status().is_success() { IMMUTABLE } else { REVALIDATE };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
