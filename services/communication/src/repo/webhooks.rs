//! Webhooks, their delivery queue and its attempts (`webhooks`, `webhook_deliveries`,
//! `webhook_attempts`, migration V4).

use chrono::{DateTime, Utc};
use crm_client_communication::{Webhook, WebhookDelivery};
use crm_tenant::{DbError, TenantTx};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

const WEBHOOK_COLUMNS: &str =
    "id, url, description, events, status, disabled_at, disabled_reason, failing_since, for_rules, created_by, created_at, updated_at";

fn webhook_from(row: &Row) -> Webhook {
    let events: serde_json::Value = row.get(3);
    Webhook {
        id: row.get(0),
        url: row.get(1),
        description: row.get(2),
        events: serde_json::from_value(events).unwrap_or_default(),
        status: row.get(4),
        disabled_at: row.get(5),
        disabled_reason: row.get(6),
        failing_since: row.get(7),
        for_rules: row.get(8),
        created_by: row.get(9),
        created_at: row.get(10),
        updated_at: row.get(11),
    }
}

/// A webhook as written (validated).
pub struct WebhookWrite {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

pub async fn insert(tx: &TenantTx, w: &WebhookWrite, secret: &str, for_rules: bool, created_by: Option<i32>) -> Result<Webhook, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO webhooks (url, events, description, secret, for_rules, created_by) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING {WEBHOOK_COLUMNS}"
        ))
        .await?;
    let row = tx.query_one(&stmt, &[&w.url, &Json(&w.events), &w.description, &secret, &for_rules, &created_by]).await?;
    Ok(webhook_from(&row))
}

pub async fn by_id(tx: &TenantTx, id: i32) -> Result<Option<Webhook>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(webhook_from))
}

/// Same, locking the row for the rest of the transaction (read, check `If-Match`, write).
pub async fn for_update(tx: &TenantTx, id: i32) -> Result<Option<Webhook>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(webhook_from))
}

/// The webhook of a rule's URL target (made on first use), locked.
pub async fn for_rules_by_url(tx: &TenantTx, url: &str) -> Result<Option<Webhook>, DbError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE for_rules AND url = $1 ORDER BY id LIMIT 1 FOR UPDATE"))
        .await?;
    Ok(tx.query_opt(&stmt, &[&url]).await?.as_ref().map(webhook_from))
}

/// `None` when there is no such webhook.
pub async fn update(tx: &TenantTx, id: i32, w: &WebhookWrite) -> Result<Option<Webhook>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE webhooks SET url = $2, events = $3, description = $4, updated_at = clock_timestamp() WHERE id = $1 \
             RETURNING {WEBHOOK_COLUMNS}"
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id, &w.url, &Json(&w.events), &w.description]).await?.as_ref().map(webhook_from))
}

/// Enables (clearing the failure state; parked-while-disabled deliveries get a fresh retry
/// window, due now) or disables it (`reason`).
pub async fn set_enabled(tx: &TenantTx, id: i32, enabled: bool, reason: Option<&str>) -> Result<Option<Webhook>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE webhooks SET status = CASE WHEN $2 THEN 'active' ELSE 'disabled' END, \
             disabled_at = CASE WHEN $2 THEN NULL ELSE clock_timestamp() END, \
             disabled_reason = CASE WHEN $2 THEN NULL ELSE $3 END, \
             failing_since = CASE WHEN $2 THEN NULL ELSE failing_since END, updated_at = clock_timestamp() \
             WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
        ))
        .await?;
    let webhook = tx.query_opt(&stmt, &[&id, &enabled, &reason]).await?.as_ref().map(webhook_from);
    if enabled && webhook.is_some() {
        let resume = tx
            .prepare_cached(
                "UPDATE webhook_deliveries SET window_start = now(), next_attempt_at = now(), updated_at = now() \
                 WHERE webhook_id = $1 AND status = 'pending'",
            )
            .await?;
        tx.execute(&resume, &[&id]).await?;
    }
    Ok(webhook)
}

/// Replaces the secret; the previous one keeps signing until `previous_until`.
pub async fn rotate_secret(tx: &TenantTx, id: i32, secret: &str, previous_until: DateTime<Utc>) -> Result<Option<Webhook>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE webhooks SET previous_secret = secret, previous_secret_expires_at = $3, secret = $2, updated_at = clock_timestamp() \
             WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id, &secret, &previous_until]).await?.as_ref().map(webhook_from))
}

pub async fn delete(tx: &TenantTx, id: i32) -> Result<bool, DbError> {
    let stmt = tx.prepare_cached("DELETE FROM webhooks WHERE id = $1").await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// Keyset position in the webhook list (by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdCursor {
    pub id: i64,
}

pub async fn list(tx: &TenantTx, after: Option<i32>, limit: i64) -> Result<Vec<Webhook>, DbError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE ($1::int IS NULL OR id > $1) ORDER BY id LIMIT $2"))
        .await?;
    Ok(tx.query(&stmt, &[&after, &(limit + 1)]).await?.iter().map(webhook_from).collect())
}

pub async fn count(tx: &TenantTx) -> Result<i64, DbError> {
    let stmt = tx.prepare_cached("SELECT count(*) FROM webhooks").await?;
    Ok(tx.query_one(&stmt, &[]).await?.get(0))
}

/// One delivery per active, subscribed webhook whose patterns match `event_type` (exact,
/// `family.*`, `*`); idempotent per (webhook, event id). Returns how many were enqueued.
pub async fn enqueue_subscribed(tx: &TenantTx, event_id: &str, event_type: &str, body: &str) -> Result<u64, DbError> {
    let family = format!("{}.*", event_type.split('.').next().unwrap_or(event_type));
    let stmt = tx
        .prepare_cached(
            "INSERT INTO webhook_deliveries (webhook_id, dedupe_key, event_id, event_type, body, next_attempt_at) \
             SELECT id, $1::text, $1::text, $2::text, $3::text, now() FROM webhooks \
             WHERE status = 'active' AND NOT for_rules AND (events ? $2::text OR events ? $4::text OR events ? '*') \
             ON CONFLICT (webhook_id, dedupe_key) DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&event_id, &event_type, &body, &family]).await
}

/// One delivery of an arbitrary event to one webhook (rules); the existing one's id when the
/// key was used before.
pub async fn enqueue_one(tx: &TenantTx, webhook_id: i32, key: &str, event_id: &str, event_type: &str, body: &str) -> Result<i64, DbError> {
    let stmt = tx
        .prepare_cached(
            "WITH ins AS (INSERT INTO webhook_deliveries (webhook_id, dedupe_key, event_id, event_type, body, next_attempt_at) \
             VALUES ($1::int, $2::text, $3::text, $4::text, $5::text, now()) ON CONFLICT (webhook_id, dedupe_key) DO NOTHING RETURNING id) \
             SELECT id FROM ins UNION ALL SELECT id FROM webhook_deliveries WHERE webhook_id = $1 AND dedupe_key = $2 LIMIT 1",
        )
        .await?;
    Ok(tx.query_one(&stmt, &[&webhook_id, &key, &event_id, &event_type, &body]).await?.get(0))
}

const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.dedupe_key, d.event_id, d.event_type, d.status, d.attempts, d.response_status, \
     d.latency_ms, d.error, d.next_attempt_at, d.last_attempt_at, d.created_at";

/// The `webhook-id` of a delivery: the event id for subscriptions (so an integrator
/// recognises the same event), the event id and delivery id for rule deliveries.
pub fn message_id(dedupe_key: &str, event_id: &str, delivery_id: i64) -> String {
    if dedupe_key == event_id { event_id.to_owned() } else { format!("{event_id}_{delivery_id}") }
}

fn delivery_from(row: &Row) -> WebhookDelivery {
    let id: i64 = row.get(0);
    let key: String = row.get(2);
    let event_id: String = row.get(3);
    WebhookDelivery {
        id,
        webhook_id: row.get(1),
        message_id: message_id(&key, &event_id, id),
        event_id,
        event_type: row.get(4),
        status: row.get(5),
        attempts: row.get(6),
        response_status: row.get(7),
        latency_ms: row.get(8),
        error: row.get(9),
        next_attempt_at: row.get(10),
        last_attempt_at: row.get(11),
        created_at: row.get(12),
    }
}

/// Deliveries of a webhook, newest first, optionally of one status.
pub async fn deliveries(tx: &TenantTx, webhook_id: i32, status: Option<&str>, before: Option<i64>, limit: i64) -> Result<Vec<WebhookDelivery>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = $1 AND ($2::text IS NULL OR d.status = $2) \
             AND ($3::bigint IS NULL OR d.id < $3) ORDER BY d.id DESC LIMIT $4"
        ))
        .await?;
    Ok(tx.query(&stmt, &[&webhook_id, &status, &before, &(limit + 1)]).await?.iter().map(delivery_from).collect())
}

pub async fn count_deliveries(tx: &TenantTx, webhook_id: i32, status: Option<&str>) -> Result<i64, DbError> {
    let stmt = tx
        .prepare_cached("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND ($2::text IS NULL OR status = $2)")
        .await?;
    Ok(tx.query_one(&stmt, &[&webhook_id, &status]).await?.get(0))
}

pub async fn delivery(tx: &TenantTx, webhook_id: i32, id: i64) -> Result<Option<WebhookDelivery>, DbError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = $1 AND d.id = $2 FOR UPDATE"))
        .await?;
    Ok(tx.query_opt(&stmt, &[&webhook_id, &id]).await?.as_ref().map(delivery_from))
}

/// Makes a delivery due now again, with a fresh retry window (its attempts go on counting).
pub async fn redeliver(tx: &TenantTx, id: i64) -> Result<(), DbError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), window_start = now(), updated_at = now() WHERE id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&id]).await?;
    Ok(())
}

/// A claimed delivery with what sending it needs.
pub struct Claimed {
    pub id: i64,
    pub webhook_id: i32,
    pub message_id: String,
    pub attempt: i32,
    pub body: String,
    pub window_start: DateTime<Utc>,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
}

/// Claims up to `limit` due deliveries of active webhooks (`FOR UPDATE SKIP LOCKED`) and
/// leases them for `lease_ms` (their `next_attempt_at` moves past it, and their attempt
/// count is taken), so the sending happens outside any transaction and another instance
/// takes them only if this one never reports back.
pub async fn claim_due(tx: &TenantTx, limit: i64, lease_ms: i64) -> Result<Vec<Claimed>, DbError> {
    let stmt = tx
        .prepare_cached(
            "WITH due AS (SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id AND w.status = 'active' \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= now() ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED) \
             UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2::bigint / 1000.0), \
                 updated_at = now() \
             FROM due, webhooks w WHERE d.id = due.id AND w.id = d.webhook_id \
             RETURNING d.id, d.webhook_id, d.dedupe_key, d.event_id, d.attempts, d.body, d.window_start, w.url, w.secret, \
                 w.previous_secret, w.previous_secret_expires_at",
        )
        .await?;
    let rows = tx.query(&stmt, &[&limit, &lease_ms]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let key: String = r.get(2);
            let event_id: String = r.get(3);
            Claimed {
                id,
                webhook_id: r.get(1),
                message_id: message_id(&key, &event_id, id),
                attempt: r.get(4),
                body: r.get(5),
                window_start: r.get(6),
                url: r.get(7),
                secret: r.get(8),
                // Still valid during the rotation's grace period; decided here, not by
                // `now()` in RETURNING (refused on Citus: docs/SCALING.md).
                previous_secret: r
                    .get::<_, Option<DateTime<Utc>>>(10)
                    .filter(|expires| *expires > Utc::now())
                    .and_then(|_| r.get(9)),
            }
        })
        .collect())
}

/// The outcome of attempt `attempt` of a delivery: the attempt row, and the delivery's new
/// state (`succeeded`; `pending` again at `retry_at`; or `failed` when `retry_at` is `None`).
/// Nothing changes when the delivery moved on meanwhile (redelivered, deleted).
pub struct Outcome<'a> {
    pub delivery_id: i64,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<&'a str>,
    pub excerpt: Option<&'a str>,
    pub retry_at: Option<DateTime<Utc>>,
}

pub async fn record(tx: &TenantTx, o: &Outcome<'_>) -> Result<bool, DbError> {
    let status = match (o.error, o.retry_at) {
        (None, _) => "succeeded",
        (Some(_), Some(_)) => "pending",
        (Some(_), None) => "failed",
    };
    let stmt = tx
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, last_attempt_at = $5, response_status = $6, \
             latency_ms = $7, error = $8, updated_at = now() WHERE id = $1 AND attempts = $2 AND status = 'pending'",
        )
        .await?;
    let next = if status == "pending" { o.retry_at } else { None };
    let changed = tx
        .execute(&stmt, &[&o.delivery_id, &o.attempt, &status, &next, &o.at, &o.response_status, &o.latency_ms, &o.error])
        .await?
        == 1;
    let attempt = tx
        .prepare_cached(
            "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, response_status, latency_ms, error, response_excerpt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, attempt) DO NOTHING",
        )
        .await?;
    tx.execute(&attempt, &[&o.delivery_id, &o.attempt, &o.at, &o.response_status, &o.latency_ms, &o.error, &o.excerpt]).await?;
    Ok(changed)
}

/// After a success: the webhook is healthy again.
pub async fn mark_healthy(tx: &TenantTx, webhook_id: i32) -> Result<(), DbError> {
    let stmt = tx.prepare_cached("UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL").await?;
    tx.execute(&stmt, &[&webhook_id]).await?;
    Ok(())
}

/// After a failure: when the webhook started failing (this attempt, if it was healthy), and
/// whether it is still active; locked.
pub async fn mark_failing(tx: &TenantTx, webhook_id: i32, at: DateTime<Utc>) -> Result<Option<(DateTime<Utc>, bool)>, DbError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE webhooks SET failing_since = coalesce(failing_since, $2) WHERE id = $1 RETURNING failing_since, status = 'active'",
        )
        .await?;
    Ok(tx.query_opt(&stmt, &[&webhook_id, &at]).await?.map(|r| (r.get(0), r.get(1))))
}

/// One attempt of a delivery, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptRecord {
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    /// The first characters of the answer's body.
    pub response_excerpt: Option<String>,
}

pub async fn attempts(tx: &TenantTx, delivery_id: i64) -> Result<Vec<AttemptRecord>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT attempt, attempted_at, response_status, latency_ms, error, response_excerpt FROM webhook_attempts \
             WHERE delivery_id = $1 ORDER BY attempt",
        )
        .await?;
    Ok(tx
        .query(&stmt, &[&delivery_id])
        .await?
        .iter()
        .map(|r| AttemptRecord {
            attempt: r.get(0),
            attempted_at: r.get(1),
            response_status: r.get(2),
            latency_ms: r.get(3),
            error: r.get(4),
            response_excerpt: r.get(5),
        })
        .collect())
}

/// When the next delivery of this tenant is due (active webhooks only).
pub async fn next_due(tx: &TenantTx) -> Result<Option<DateTime<Utc>>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT min(d.next_attempt_at) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id AND w.status = 'active' \
             WHERE d.status = 'pending'",
        )
        .await?;
    Ok(tx.query_one(&stmt, &[]).await?.get(0))
}

/// The request body of a delivery (the envelope as sent).
pub async fn delivery_body(tx: &TenantTx, id: i64) -> Result<Option<String>, DbError> {
    let stmt = tx.prepare_cached("SELECT body FROM webhook_deliveries WHERE id = $1").await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| r.get(0)))
}
