//! The public tracking endpoints (no auth): the open pixel and the signed click redirect.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_web::{ApiError, AppPath, AppQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::service::tracking as service;

/// A transparent 1x1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Open-tracking pixel (no auth). The first open is recorded with `email.opened`; every
/// open is counted.
#[utoipa::path(get, path = "/api/v1/t/o/{file}",
    params(("file" = String, Path, description = "The tracking token followed by `.gif`, as written into the email")),
    tag = "tracking",
    responses((status = 200, description = "A transparent 1x1 GIF", content_type = "image/gif"), (status = 404)))]
pub async fn track_open(State(state): State<AppState>, AppPath(file): AppPath<String>) -> Result<Response, ApiError> {
    service::open(&state, &file).await?;
    let mut response = PIXEL.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache, must-revalidate, max-age=0"));
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClickParams {
    /// The target URL, as signed into the email.
    pub u: String,
    /// Signature of token and URL.
    pub s: String,
}

/// Click tracking (no auth): redirects only to the URL signed into the email; a link whose
/// URL or signature was altered is refused (no open redirect).
#[utoipa::path(get, path = "/api/v1/t/c/{token}",
    params(("token" = String, Path, description = "The tracking token of the email"), ClickParams),
    tag = "tracking",
    responses((status = 302, description = "Redirect to the signed URL"), (status = 400), (status = 404)))]
pub async fn track_click(State(state): State<AppState>, AppPath(token): AppPath<String>, AppQuery(params): AppQuery<ClickParams>) -> Result<Response, ApiError> {
    let location = service::click(&state, &token, &params.u, &params.s).await?;
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
