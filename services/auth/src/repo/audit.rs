//! The tenant's audit log (`audit_log`): rows written by the event consumer, read newest
//! first by `GET /audit`, deleted by the retention job.

use chrono::{DateTime, Utc};
use crm_tenant::TenantTx;
use tokio_postgres::types::Json;

use super::Result;

/// One row to record (built from an event by `service::audit`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditRow {
    pub event_id: String,
    pub event_type: String,
    pub resource: String,
    pub action: String,
    pub resource_id: Option<String>,
    pub actor: Option<String>,
    pub actor_id: Option<i32>,
    pub request_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub changes: Option<serde_json::Value>,
    pub data: serde_json::Value,
}

/// A stored row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub row: NewAuditRow,
    pub recorded_at: DateTime<Utc>,
}

/// Inserts the row unless its event is already recorded (idempotent per event id).
/// Returns whether it was new.
pub async fn insert(tx: &TenantTx, r: &NewAuditRow) -> Result<bool> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit_log (event_id, event_type, resource, action, resource_id, actor, actor_id, request_id, occurred_at, changes, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (event_id) DO NOTHING",
        )
        .await?;
    let changes = r.changes.as_ref().map(Json);
    let data = Json(&r.data);
    let n = tx
        .execute(
            &stmt,
            &[
                &r.event_id,
                &r.event_type,
                &r.resource,
                &r.action,
                &r.resource_id,
                &r.actor,
                &r.actor_id,
                &r.request_id,
                &r.occurred_at,
                &changes,
                &data,
            ],
        )
        .await?;
    Ok(n == 1)
}

/// The filters of `GET /audit` (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub resource: Option<String>,
    pub resource_id: Option<String>,
    pub actor: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

/// Newest first (`occurred_at`, then event id, both descending), after the keyset
/// position `after` when given; fetches `limit + 1` rows (the page's look-ahead).
pub async fn list(tx: &TenantTx, f: &AuditFilter, after: Option<(DateTime<Utc>, String)>, limit: i64) -> Result<Vec<AuditRow>> {
    let stmt = tx
        .prepare_cached(
            "SELECT event_id, event_type, resource, action, resource_id, actor, actor_id, request_id, occurred_at, changes, data, recorded_at \
             FROM audit_log \
             WHERE ($1::text IS NULL OR resource = $1) AND ($2::text IS NULL OR resource_id = $2) \
               AND ($3::text IS NULL OR actor = $3) \
               AND ($4::timestamptz IS NULL OR occurred_at >= $4) AND ($5::timestamptz IS NULL OR occurred_at < $5) \
               AND ($6::timestamptz IS NULL OR (occurred_at, event_id) < ($6, $7::text)) \
             ORDER BY occurred_at DESC, event_id DESC LIMIT $8",
        )
        .await?;
    let (after_t, after_id) = after.map_or((None, None), |(t, id)| (Some(t), Some(id)));
    let rows = tx
        .query(&stmt, &[&f.resource, &f.resource_id, &f.actor, &f.from, &f.to, &after_t, &after_id, &(limit + 1)])
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditRow {
            row: NewAuditRow {
                event_id: r.get(0),
                event_type: r.get(1),
                resource: r.get(2),
                action: r.get(3),
                resource_id: r.get(4),
                actor: r.get(5),
                actor_id: r.get(6),
                request_id: r.get(7),
                occurred_at: r.get(8),
                changes: r.get::<_, Option<Json<serde_json::Value>>>(9).map(|j| j.0),
                data: r.get::<_, Json<serde_json::Value>>(10).0,
            },
            recorded_at: r.get(11),
        })
        .collect())
}

/// Deletes up to `batch` rows older than `before`; returns how many went.
pub async fn delete_older_than(tx: &TenantTx, before: DateTime<Utc>, batch: i64) -> Result<u64> {
    let stmt = tx
        .prepare_cached(
            "DELETE FROM audit_log WHERE event_id IN \
             (SELECT event_id FROM audit_log WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2)",
        )
        .await?;
    Ok(tx.execute(&stmt, &[&before, &batch]).await?)
}
