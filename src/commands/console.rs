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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request as HttpRequest;

    /// A built console in a fresh directory: index.html and one hashed bundle.
    fn built() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crm-console-test-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html><div id=app></div>").unwrap();
        std::fs::write(dir.join("assets/index-abc123.js"), "console.log(1)").unwrap();
        dir
    }

    fn unique() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    }

    async fn get(router: &Router, method: Method, path: &str) -> (StatusCode, Option<String>, String) {
        let req = HttpRequest::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let cache = resp.headers().get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, cache, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn app_routes_get_index_html_and_bundles_are_immutable() {
        let dir = built();
        let router = routes(Some(dir.clone()));
        for path in ["/", "/login", "/contacts/42", "/deals/forecast"] {
            let (status, cache, body) = get(&router, Method::GET, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body.contains("id=app"), "{path}: {body}");
            assert_eq!(cache.as_deref(), Some(REVALIDATE), "{path}");
        }
        let (status, cache, body) = get(&router, Method::GET, "/assets/index-abc123.js").await;
        assert_eq!((status, cache.as_deref(), body.as_str()), (StatusCode::OK, Some(IMMUTABLE), "console.log(1)"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn api_paths_missing_bundles_and_writes_are_errors_in_the_api_shape() {
        let dir = built();
        let router = routes(Some(dir.clone()));
        for (method, path, status) in [
            (Method::GET, "/api/v1/nope", StatusCode::NOT_FOUND),
            (Method::GET, "/api", StatusCode::NOT_FOUND),
            (Method::GET, "/assets/missing.js", StatusCode::NOT_FOUND),
            (Method::POST, "/contacts", StatusCode::METHOD_NOT_ALLOWED),
            (Method::DELETE, "/api/v1/nope", StatusCode::NOT_FOUND),
        ] {
            let (got, _, body) = get(&router, method.clone(), path).await;
            assert_eq!(got, status, "{method} {path}: {body}");
            assert!(body.contains("\"code\""), "{method} {path}: {body}");
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn without_a_build_the_answer_says_how_to_build_it() {
        let (status, _, body) = get(&routes(None), Method::GET, "/contacts").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("npm ci && npm run build"), "{body}");
    }
}
