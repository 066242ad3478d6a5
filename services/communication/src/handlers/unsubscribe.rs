//! The public one-click unsubscribe endpoints of marketing email (RFC 8058, no auth).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use crm_web::{ApiError, AppPath};

use crate::AppState;
use crate::render::html_escape;
use crate::service::unsubscribe as service;

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\"><h1>{title}</h1>{body}</body></html>"
    );
    let mut response = Html(html).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Unsubscribe confirmation page (no auth): shows the address and a button that POSTs; a
/// GET never unsubscribes (link scanners follow links).
#[utoipa::path(get, path = "/api/v1/unsubscribe/{token}",
    params(("token" = String, Path, description = "The signed unsubscribe token of the email")),
    tag = "unsubscribe",
    responses((status = 200, description = "Confirmation page", content_type = "text/html"), (status = 404)))]
pub async fn unsubscribe_page(State(state): State<AppState>, AppPath(token): AppPath<String>) -> Result<Response, ApiError> {
    let address = service::preview(&state, &token).await?;
    let body = format!(
        "<p>Stop marketing emails to <b>{}</b>?</p><form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form>",
        html_escape(&address)
    );
    Ok(page("Unsubscribe", &body))
}

/// One-click unsubscribe (no auth; RFC 8058: mail clients POST `List-Unsubscribe=One-Click`,
/// the body is not needed): withdraws the recipient from marketing email, stops its
/// sequences, publishes `email.unsubscribed`. Repeating it changes nothing.
#[utoipa::path(post, path = "/api/v1/unsubscribe/{token}",
    params(("token" = String, Path, description = "The signed unsubscribe token of the email")),
    tag = "unsubscribe",
    responses((status = 200, description = "Unsubscribed (a short HTML page)", content_type = "text/html"), (status = 404)))]
pub async fn unsubscribe(State(state): State<AppState>, AppPath(token): AppPath<String>) -> Result<Response, ApiError> {
    let address = service::unsubscribe(&state, &token).await?;
    Ok(page("Unsubscribed", &format!("<p><b>{}</b> will get no more marketing emails from us.</p>", html_escape(&address))))
}
