//! `/webhooks`: register, list, read, change, delete, rotate the secret; the deliveries of a
//! webhook and their redelivery. Admins only (`webhooks` in the permission matrix).

use axum::extract::State;
use crm_client_communication::{NewWebhook, Webhook, WebhookDelivery, WebhookPatch, WebhookWithSecret};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, Tagged, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use super::Accepted;
use crate::AppState;
use crate::service::webhooks::{self as service, DeliveryDetails};
use crate::service::parse_id;

/// Query parameters of `GET /webhooks` (all optional).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WebhookListParams {
    /// `id` (the default and only order); anything else is refused.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

/// Query parameters of `GET /webhooks/{id}/deliveries` (all optional).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeliveryListParams {
    /// `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
    /// `-id` (newest first, the default and only order); anything else is refused.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

/// A delivery id from the path: a positive integer, else not found.
fn parse_delivery_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::not_found("webhook delivery"))
}

/// Registers a webhook; the answer carries its signing secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/webhooks", request_body = NewWebhook, tag = "webhooks",
    responses((status = 201, description = "Created (with the secret)", body = WebhookWithSecret), (status = 400), (status = 401), (status = 403),
        (status = 422, description = "The URL's host resolves to a non-public address (WEBHOOK_TARGET_REFUSED)")))]
pub async fn create_webhook(
    State(state): State<AppState>,
    can: Can<perm::WebhooksWrite>,
    AppJson(body): AppJson<NewWebhook>,
) -> Result<Tagged<WebhookWithSecret>, ApiError> {
    let created = service::create(&state, &can, body).await?;
    Ok(Tagged::created(ETag::of(created.webhook.updated_at), created))
}

#[utoipa::path(get, path = "/api/v1/webhooks", params(WebhookListParams), tag = "webhooks",
    responses((status = 200, description = "A page of webhooks, by id", body = Page<Webhook>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    can: Can<perm::WebhooksRead>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<Webhook>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", params(("id" = i32, Path, description = "Webhook id")), tag = "webhooks",
    responses((status = 200, description = "The webhook", body = Webhook), (status = 401), (status = 403), (status = 404)))]
pub async fn get_webhook(State(state): State<AppState>, can: Can<perm::WebhooksRead>, AppPath(id): AppPath<String>) -> Result<Tagged<Webhook>, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let webhook = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(webhook.updated_at), webhook))
}

/// Changes the URL, events, description, or `enabled` (re-enabling resumes the deliveries
/// that waited).
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", params(("id" = i32, Path, description = "Webhook id")), request_body = WebhookPatch, tag = "webhooks",
    responses((status = 200, description = "Changed", body = Webhook), (status = 400), (status = 401), (status = 403), (status = 404), (status = 412),
        (status = 422, description = "The URL's host resolves to a non-public address (WEBHOOK_TARGET_REFUSED)")))]
pub async fn patch_webhook(
    State(state): State<AppState>,
    can: Can<perm::WebhooksWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(body): AppJson<WebhookPatch>,
) -> Result<Tagged<Webhook>, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let webhook = service::patch(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(webhook.updated_at), webhook))
}

/// Deletes the webhook and its deliveries.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", params(("id" = i32, Path, description = "Webhook id")), tag = "webhooks",
    responses((status = 204, description = "Deleted"), (status = 401), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    can: Can<perm::WebhooksDelete>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "webhook")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}

/// A new signing secret, shown only in this answer; the previous one keeps signing for 24 hours.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", params(("id" = i32, Path, description = "Webhook id")), tag = "webhooks",
    responses((status = 200, description = "The webhook with its new secret", body = WebhookWithSecret), (status = 401), (status = 403), (status = 404), (status = 412)))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    can: Can<perm::WebhooksWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
) -> Result<Tagged<WebhookWithSecret>, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let rotated = service::rotate_secret(&state, &can, id, &if_match).await?;
    Ok(Tagged::new(ETag::of(rotated.webhook.updated_at), rotated))
}

/// The webhook's deliveries, newest first: status, attempts, latest status code, latency and
/// error, next attempt.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", params(("id" = i32, Path, description = "Webhook id"), DeliveryListParams), tag = "webhooks",
    responses((status = 200, description = "A page of deliveries", body = Page<WebhookDelivery>), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    can: Can<perm::WebhooksRead>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<WebhookDelivery>>, ApiError> {
    let id = parse_id(&id, "webhook")?;
    Ok(AppJson(service::deliveries(&state, &can, id, &params).await?))
}

/// One delivery with its payload and every attempt (status code, latency, error, the start
/// of the answer).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}",
    params(("id" = i32, Path, description = "Webhook id"), ("delivery_id" = i64, Path, description = "Delivery id")), tag = "webhooks",
    responses((status = 200, description = "The delivery", body = DeliveryDetails), (status = 401), (status = 403), (status = 404)))]
pub async fn get_webhook_delivery(
    State(state): State<AppState>,
    can: Can<perm::WebhooksRead>,
    AppPath((id, delivery_id)): AppPath<(String, String)>,
) -> Result<AppJson<DeliveryDetails>, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let delivery_id = parse_delivery_id(&delivery_id)?;
    Ok(AppJson(service::delivery(&state, &can, id, delivery_id).await?))
}

/// Sends the delivery again (now, with a fresh retry window and the same `webhook-id`).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    params(("id" = i32, Path, description = "Webhook id"), ("delivery_id" = i64, Path, description = "Delivery id")), tag = "webhooks",
    responses((status = 202, description = "Queued again", body = WebhookDelivery), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "The webhook is disabled")))]
pub async fn redeliver_webhook_delivery(
    State(state): State<AppState>,
    can: Can<perm::WebhooksWrite>,
    AppPath((id, delivery_id)): AppPath<(String, String)>,
) -> Result<Accepted<WebhookDelivery>, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let delivery_id = parse_delivery_id(&delivery_id)?;
    Ok(Accepted(service::redeliver(&state, &can, id, delivery_id).await?))
}
