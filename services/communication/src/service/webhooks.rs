//! Webhooks for integrators (issue 15): endpoints subscribed to event types, a durable
//! delivery queue in the tenant schema, Standard Webhooks signing.
//!
//! CONTRACT for automation rules (issue 15, item 6; H-auto calls these, H-hooks keeps them
//! stable):
//!
//! ```ignore
//! /// Where a rule's `{"type":"webhook", ...}` action delivers.
//! pub enum WebhookTarget { Id(i32), Url(String) }
//!
//! /// Checks a rule's target when the rule is saved: the webhook exists (404 NOT_FOUND "webhook not found"
//! /// otherwise), or the URL is http(s) and passes the SSRF guard (422 naming `field`).
//! pub async fn check_rule_target(state: &AppState, tx: &TenantTx, target: &WebhookTarget, field: &str) -> Result<(), ApiError>;
//!
//! /// Enqueues ONE delivery of `event` (any envelope; sent as is, signed with the webhook's
//! /// secret) to the target, in the caller's transaction (it exists iff that commits), due
//! /// now. Idempotent per (webhook, `key`): a second call with the same key returns the
//! /// first delivery's id (use e.g. `format!("rule-run:{run_id}")`). A `Url` target is
//! /// delivered through a webhook row of that URL subscribed to no events (created on first
//! /// use, listed in GET /webhooks, its secret obtainable by rotate-secret). A disabled
//! /// webhook still gets the delivery queued (parked until re-enabled). Returns the delivery id.
//! pub async fn enqueue_for_rule(state: &AppState, tx: &TenantTx, target: &WebhookTarget, event: &Envelope, key: &str) -> Result<i64, ApiError>;
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_client_communication::subjects::{WEBHOOK_CREATED, WEBHOOK_DELETED, WEBHOOK_DISABLED, WEBHOOK_SECRET_ROTATED, WEBHOOK_UPDATED};
use crm_client_communication::{NewWebhook, Webhook, WebhookDelivery, WebhookEvent, WebhookPatch, WebhookWithSecret};
use crm_events::{Envelope, publish};
use crm_tenant::{TenantId, TenantTx};
use crm_web::{ApiError, Can, ETag, FieldErrors, IfMatch, Page, QueryParams, codes, parse_limit, perm};
use futures::StreamExt;
use serde::Serialize;

use crate::AppState;
use crate::repo::webhooks::{self as repo, AttemptRecord, Claimed, Outcome, WebhookWrite};
use crate::webhook_delivery::{self as delivery, Outgoing};

/// Most event patterns per webhook.
pub const MAX_EVENTS: usize = 50;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 500;
/// How long a rotated-out secret keeps signing (receivers switch over meanwhile).
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Where an automation rule's `{"type":"webhook", ...}` action delivers: a registered
/// webhook by id, or a URL (delivered through a webhook row of that URL, see
/// [`enqueue_for_rule`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookTarget {
    Id(i32),
    Url(String),
}

/// Event patterns: `*`, `<family>.*` or `<family>.<name>` (lower case, digits, `_`), the
/// family one of the event stream's; 1..=[`MAX_EVENTS`], duplicates dropped.
fn check_events(errors: &mut FieldErrors, events: &[String]) -> Vec<String> {
    let families: Vec<&str> = crm_events::STREAM_SUBJECTS.iter().map(|s| s.trim_end_matches(".>")).collect();
    if events.is_empty() {
        errors.add("events", "must list at least one event type (e.g. \"deal.closed_won\", \"contact.*\" or \"*\")");
    }
    if events.len() > MAX_EVENTS {
        errors.add("events", format!("must list at most {MAX_EVENTS} event types"));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in events.iter().enumerate() {
        let pattern = raw.trim();
        let word = |w: &str| !w.is_empty() && w.len() <= 64 && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let ok = pattern == "*"
            || match pattern.split_once('.') {
                Some((family, name)) => families.contains(&family) && (name == "*" || word(name)),
                None => false,
            };
        if !ok {
            errors.add(
                format!("events[{i}]"),
                format!("must be an event type like \"deal.closed_won\", a family like \"contact.*\", or \"*\" (families: {})", families.join(", ")),
            );
        } else if !out.iter().any(|p| p == pattern) {
            out.push(pattern.to_owned());
        }
    }
    out
}

/// The URL's syntax, into `errors` under `field` (400 with the other fields).
fn parse_url(errors: &mut FieldErrors, field: &str, raw: &str) -> Option<reqwest::Url> {
    match delivery::parse_target(raw) {
        Ok(url) => Some(url),
        Err(message) => {
            errors.add(field, message);
            None
        }
    }
}

/// The SSRF guard on a parsed URL: 422 `WEBHOOK_TARGET_REFUSED` naming `field` when its host
/// resolves to a non-public address (or does not resolve).
async fn guard_url(state: &AppState, field: &str, url: Option<reqwest::Url>) -> Result<String, ApiError> {
    let Some(url) = url else { return Err(ApiError::internal("guard_url without a parsed URL")) };
    match delivery::check_addresses(&state.settings.webhooks.allowed, &url).await {
        Ok(()) => Ok(url.to_string()),
        Err(message) => Err(ApiError::unprocessable(codes::WEBHOOK_TARGET_REFUSED, format!("{field}: {message}"))
            .with_details(serde_json::json!({ "fields": { field: message } }))),
    }
}

/// Both: 400 naming `field` for a malformed URL, 422 for a refused one.
async fn check_url(state: &AppState, field: &str, raw: &str) -> Result<String, ApiError> {
    let mut errors = FieldErrors::new();
    let url = parse_url(&mut errors, field, raw);
    errors.into_result()?;
    guard_url(state, field, url).await
}

fn description(errors: &mut FieldErrors, raw: Option<&str>) -> Option<String> {
    let value = raw.map(str::trim).filter(|d| !d.is_empty())?;
    crm_web::validate::multiline(errors, "description", value, MAX_DESCRIPTION);
    Some(value.to_owned())
}

fn event_of(webhook: &Webhook, reason: Option<String>) -> WebhookEvent {
    WebhookEvent {
        webhook_id: webhook.id,
        url: webhook.url.clone(),
        events: webhook.events.clone(),
        status: webhook.status.clone(),
        reason,
        failing_since: webhook.failing_since,
    }
}

/// `POST /webhooks`: a new active webhook and its secret (shown this once); `webhook.created`.
pub async fn create(state: &AppState, can: &Can<perm::WebhooksWrite>, input: NewWebhook) -> Result<WebhookWithSecret, ApiError> {
    let mut errors = FieldErrors::new();
    let events = check_events(&mut errors, &input.events);
    let description = description(&mut errors, input.description.as_deref());
    let url = parse_url(&mut errors, "url", &input.url);
    errors.into_result()?;
    let url = guard_url(state, "url", url).await?;
    let secret = delivery::new_secret();
    let tx = state.db.tenant(&can.tenant_id).await?;
    let webhook = repo::insert(&tx, &WebhookWrite { url, events, description }, &secret, false, Some(can.user_id)).await?;
    publish(&tx, Some(can.user_id), WEBHOOK_CREATED, event_of(&webhook, None)).await?;
    tx.commit().await?;
    Ok(WebhookWithSecret { webhook, secret })
}

/// `GET /webhooks`: by id, cursor-paginated.
pub async fn list(state: &AppState, can: &Can<perm::WebhooksRead>, params: &QueryParams) -> Result<Page<Webhook>, ApiError> {
    let mut errors = FieldErrors::new();
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    super::single_sort(params, &mut errors, "id");
    errors.into_result()?;
    let after: Option<repo::IdCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    let after = after.map(|c| i32::try_from(c.id).unwrap_or(i32::MAX));
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = repo::list(&tx, after, limit).await?;
    let total = if params.count() { Some(repo::count(&tx).await?) } else { None };
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&repo::IdCursor { id: i64::from(last.id) })))
}

pub async fn get(state: &AppState, can: &Can<perm::WebhooksRead>, id: i32) -> Result<Webhook, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let webhook = repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    tx.commit().await?;
    Ok(webhook)
}

/// `PATCH /webhooks/{id}`: URL (through the guard), events, description, `enabled`;
/// `webhook.updated`.
pub async fn patch(state: &AppState, can: &Can<perm::WebhooksWrite>, id: i32, if_match: &IfMatch, input: WebhookPatch) -> Result<Webhook, ApiError> {
    let mut errors = FieldErrors::new();
    let events = input.events.as_ref().map(|e| check_events(&mut errors, e));
    let new_description = input.description.as_ref().map(|d| description(&mut errors, d.as_deref()));
    let url = input.url.as_ref().map(|raw| parse_url(&mut errors, "url", raw));
    errors.into_result()?;
    let url = match url {
        Some(parsed) => Some(guard_url(state, "url", parsed).await?),
        None => None,
    };
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    let write = WebhookWrite {
        url: url.unwrap_or_else(|| current.url.clone()),
        events: events.unwrap_or_else(|| current.events.clone()),
        description: new_description.unwrap_or_else(|| current.description.clone()),
    };
    let mut webhook = repo::update(&tx, id, &write).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    if let Some(enabled) = input.enabled
        && enabled != (webhook.status == "active")
    {
        let reason = (!enabled).then(|| format!("disabled by user {}", can.user_id));
        webhook = repo::set_enabled(&tx, id, enabled, reason.as_deref()).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    }
    publish(&tx, Some(can.user_id), WEBHOOK_UPDATED, event_of(&webhook, None)).await?;
    tx.commit().await?;
    if webhook.status == "active" {
        state.webhook_runtime.hints.touch(&can.tenant_id);
    }
    Ok(webhook)
}

/// `DELETE /webhooks/{id}`: the webhook and its deliveries; `webhook.deleted`.
pub async fn delete(state: &AppState, can: &Can<perm::WebhooksDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    repo::delete(&tx, id).await?;
    publish(&tx, Some(can.user_id), WEBHOOK_DELETED, event_of(&current, None)).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /webhooks/{id}/rotate-secret`: a new secret (shown this once); the previous one
/// also signs for [`ROTATION_GRACE`]; `webhook.secret_rotated`.
pub async fn rotate_secret(state: &AppState, can: &Can<perm::WebhooksWrite>, id: i32, if_match: &IfMatch) -> Result<WebhookWithSecret, ApiError> {
    let secret = delivery::new_secret();
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    let until = Utc::now() + chrono::Duration::from_std(ROTATION_GRACE).unwrap_or_default();
    let webhook = repo::rotate_secret(&tx, id, &secret, until).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    publish(&tx, Some(can.user_id), WEBHOOK_SECRET_ROTATED, event_of(&webhook, None)).await?;
    tx.commit().await?;
    Ok(WebhookWithSecret { webhook, secret })
}

/// `GET /webhooks/{id}/deliveries`: newest first, optionally `?status=`; cursor-paginated.
pub async fn deliveries(state: &AppState, can: &Can<perm::WebhooksRead>, id: i32, params: &QueryParams) -> Result<Page<WebhookDelivery>, ApiError> {
    let mut errors = FieldErrors::new();
    let status = params.choice(&mut errors, "status", &["pending", "succeeded", "failed"]);
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    super::single_sort(params, &mut errors, "-id");
    errors.into_result()?;
    let before: Option<repo::IdCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    let rows = repo::deliveries(&tx, id, status.as_deref(), before.map(|c| c.id), limit).await?;
    let total = if params.count() { Some(repo::count_deliveries(&tx, id, status.as_deref()).await?) } else { None };
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&repo::IdCursor { id: last.id })))
}

/// One delivery with the payload it sends and every attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryDetails {
    #[serde(flatten)]
    pub delivery: WebhookDelivery,
    /// The event envelope, as sent (the request body).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts_made: Vec<AttemptRecord>,
}

/// `GET /webhooks/{id}/deliveries/{delivery_id}`.
pub async fn delivery(state: &AppState, can: &Can<perm::WebhooksRead>, id: i32, delivery_id: i64) -> Result<DeliveryDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = repo::delivery(&tx, id, delivery_id).await?.ok_or_else(|| ApiError::not_found("webhook delivery"))?;
    let body = repo::delivery_body(&tx, delivery_id).await?.unwrap_or_default();
    let attempts_made = repo::attempts(&tx, delivery_id).await?;
    tx.commit().await?;
    let payload = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    Ok(DeliveryDetails { delivery: found, payload, attempts_made })
}

/// `POST /webhooks/{id}/deliveries/{delivery_id}/redeliver`: due now again, with a fresh
/// retry window (a succeeded delivery is sent once more, with the same `webhook-id`). 409
/// when the webhook is disabled (enable it first: its pending deliveries resume).
pub async fn redeliver(state: &AppState, can: &Can<perm::WebhooksWrite>, id: i32, delivery_id: i64) -> Result<WebhookDelivery, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let webhook = repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
    repo::delivery(&tx, id, delivery_id).await?.ok_or_else(|| ApiError::not_found("webhook delivery"))?;
    if webhook.status != "active" {
        return Err(ApiError::conflict(codes::CONFLICT, "the webhook is disabled: enable it (PATCH {\"enabled\": true}) to deliver again"));
    }
    repo::redeliver(&tx, delivery_id).await?;
    let found = repo::delivery(&tx, id, delivery_id).await?.ok_or_else(|| ApiError::not_found("webhook delivery"))?;
    tx.commit().await?;
    state.webhook_runtime.hints.touch(&can.tenant_id);
    Ok(found)
}

/// The event, as published, to every active webhook subscribed to its type (consumer of
/// all subjects, in its transaction; idempotent per (webhook, event)).
pub async fn fan_out(state: &AppState, tx: &TenantTx, event: &Envelope) -> Result<(), ApiError> {
    let body = serde_json::to_string(event).map_err(ApiError::internal)?;
    let n = repo::enqueue_subscribed(tx, &event.id, &event.r#type, &body).await?;
    if n > 0 {
        state.webhook_runtime.hints.touch(tx.tenant_id());
    }
    Ok(())
}

/// Checks a rule's webhook target when the rule is saved (see the module comment).
pub async fn check_rule_target(state: &AppState, tx: &TenantTx, target: &WebhookTarget, field: &str) -> Result<(), ApiError> {
    match target {
        WebhookTarget::Id(id) => {
            repo::by_id(tx, *id).await?.ok_or_else(|| ApiError::not_found("webhook"))?;
        }
        WebhookTarget::Url(url) => {
            check_url(state, field, url).await?;
        }
    }
    Ok(())
}

/// Enqueues one delivery of `event` to `target` in the caller's transaction; returns the
/// delivery id (see the module comment for the contract).
pub async fn enqueue_for_rule(state: &AppState, tx: &TenantTx, target: &WebhookTarget, event: &Envelope, key: &str) -> Result<i64, ApiError> {
    let webhook_id = match target {
        WebhookTarget::Id(id) => repo::by_id(tx, *id).await?.ok_or_else(|| ApiError::not_found("webhook"))?.id,
        WebhookTarget::Url(raw) => {
            let url = check_url(state, "url", raw).await?;
            match repo::for_rules_by_url(tx, &url).await? {
                Some(webhook) => webhook.id,
                None => {
                    let write = WebhookWrite { url, events: Vec::new(), description: Some("automation rule target".to_owned()) };
                    let webhook = repo::insert(tx, &write, &delivery::new_secret(), true, None).await?;
                    publish(tx, None, WEBHOOK_CREATED, event_of(&webhook, None)).await?;
                    webhook.id
                }
            }
        }
    };
    let body = serde_json::to_string(event).map_err(ApiError::internal)?;
    let id = repo::enqueue_one(tx, webhook_id, key, &event.id, &event.r#type, &body).await?;
    state.webhook_runtime.hints.touch(tx.tenant_id());
    Ok(id)
}

/// The delivery loop's work for one tenant: claims its due deliveries, sends them
/// concurrently outside any transaction, records each outcome (retry with back-off, park
/// after the window, disable a webhook failing for too long with `webhook.disabled`).
/// Returns when the tenant's next delivery is due.
pub async fn deliver_due(state: &AppState, tenant: &TenantId) -> Result<Option<DateTime<Utc>>, ApiError> {
    let config = &state.settings.webhooks;
    let lease_ms = i64::try_from(config.lease().as_millis()).unwrap_or(i64::MAX);
    loop {
        let claimed = {
            let tx = state.db.tenant(tenant).await?;
            if !schema_exists(&tx).await? {
                return Ok(None);
            }
            let claimed = repo::claim_due(&tx, config.batch, lease_ms).await?;
            tx.commit().await?;
            claimed
        };
        let full = i64::try_from(claimed.len()).unwrap_or(0) >= config.batch;
        let results: Vec<Result<(), ApiError>> =
            futures::stream::iter(claimed).map(|c| attempt(state, tenant, c)).buffer_unordered(8).collect().await;
        for r in results {
            r?;
        }
        if !full {
            break;
        }
    }
    next_due(state, tenant).await
}

async fn schema_exists(tx: &TenantTx) -> Result<bool, ApiError> {
    let stmt = tx.prepare_cached("SELECT to_regclass('webhook_deliveries') IS NOT NULL").await?;
    Ok(tx.query_one(&stmt, &[]).await?.get(0))
}

/// Sends one claimed delivery and records the outcome.
async fn attempt(state: &AppState, tenant: &TenantId, c: Claimed) -> Result<(), ApiError> {
    let config = &state.settings.webhooks;
    let keys: Vec<Vec<u8>> = [Some(&c.secret), c.previous_secret.as_ref()].into_iter().flatten().filter_map(|s| delivery::secret_key(s)).collect();
    let sent = state.webhook_runtime.sender.send(&Outgoing { url: &c.url, message_id: &c.message_id, body: &c.body, keys: &keys }).await;
    let retry_at = if sent.succeeded() {
        None
    } else {
        let at = sent.at + chrono::Duration::from_std(config.retry_delay(c.attempt)).unwrap_or_default();
        let window_end = c.window_start + chrono::Duration::from_std(config.retry_window).unwrap_or_default();
        (at <= window_end).then_some(at)
    };
    let tx = state.db.tenant(tenant).await?;
    let outcome = Outcome {
        delivery_id: c.id,
        attempt: c.attempt,
        at: sent.at,
        response_status: sent.response_status,
        latency_ms: sent.latency_ms,
        error: sent.error.as_deref(),
        excerpt: sent.excerpt.as_deref(),
        retry_at,
    };
    // The webhook row first, then the delivery: the order of every other writer (delete,
    // enable), so no two transactions wait on each other.
    let failing = if sent.succeeded() {
        repo::mark_healthy(&tx, c.webhook_id).await?;
        None
    } else {
        repo::mark_failing(&tx, c.webhook_id, sent.at).await?
    };
    repo::record(&tx, &outcome).await?;
    if let Some((failing_since, true)) = failing {
        let failing_for = (Utc::now() - failing_since).to_std().unwrap_or_default();
        if failing_for >= config.disable_after {
            let reason = format!("failing without a successful delivery since {}", failing_since.to_rfc3339());
            if let Some(webhook) = repo::set_enabled(&tx, c.webhook_id, false, Some(&reason)).await? {
                tracing::warn!(tenant = %tenant, webhook_id = c.webhook_id, %reason, "webhook disabled");
                publish(&tx, None, WEBHOOK_DISABLED, event_of(&webhook, Some(reason))).await?;
            }
        }
    }
    tx.commit().await?;
    if let Some(error) = &sent.error {
        tracing::info!(tenant = %tenant, delivery_id = c.id, attempt = c.attempt, error, parked = retry_at.is_none(), "webhook attempt failed");
    }
    Ok(())
}

/// When the tenant's next delivery is due (`None`: nothing pending, or no such schema).
pub async fn next_due(state: &AppState, tenant: &TenantId) -> Result<Option<DateTime<Utc>>, ApiError> {
    let tx = state.db.tenant(tenant).await?;
    if !schema_exists(&tx).await? {
        return Ok(None);
    }
    let next = repo::next_due(&tx).await?;
    tx.commit().await?;
    Ok(next)
}

/// The tenants the sweep looks at: every active one.
pub async fn active_tenants(state: &AppState) -> Result<Vec<TenantId>, ApiError> {
    let tx = state.db.platform().await?;
    let stmt = tx.prepare_cached("SELECT id FROM tenants WHERE status = 'active'").await?;
    let rows = tx.query(&stmt, &[]).await?;
    tx.commit().await?;
    Ok(rows.iter().filter_map(|r| TenantId::parse(r.get::<_, &str>(0)).ok()).collect())
}
