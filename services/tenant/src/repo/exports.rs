//! `platform.tenant_exports`: the export jobs (global migration V9).

use chrono::{DateTime, Utc};
use crm_tenant::{PlatformTx, TenantId};
use tokio_postgres::Row;

use super::Result;

/// One export job as stored.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub id: String,
    pub tenant_id: String,
    pub status: String,
    pub requested_by: Option<i32>,
    pub attempts: i32,
    pub storage_key: Option<String>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, tenant_id, status, requested_by, attempts, storage_key, size_bytes, sha256, error, created_at, started_at, finished_at, expires_at";

fn export_from(row: &Row) -> ExportRow {
    ExportRow {
        id: row.get(0),
        tenant_id: row.get(1),
        status: row.get(2),
        requested_by: row.get(3),
        attempts: row.get(4),
        storage_key: row.get(5),
        size_bytes: row.get(6),
        sha256: row.get(7),
        error: row.get(8),
        created_at: row.get(9),
        started_at: row.get(10),
        finished_at: row.get(11),
        expires_at: row.get(12),
    }
}

pub async fn insert_export(tx: &PlatformTx, id: &str, tenant: &TenantId, requested_by: Option<i32>) -> Result<ExportRow> {
    let sql = format!("INSERT INTO platform.tenant_exports (id, tenant_id, requested_by) VALUES ($1, $2, $3) RETURNING {COLUMNS}");
    Ok(export_from(&tx.query_one(sql.as_str(), &[&id, &tenant.to_string(), &requested_by]).await?))
}

/// The tenant's unfinished export, if any (a second request gets it instead of a new job).
pub async fn unfinished_export(tx: &PlatformTx, tenant: &TenantId) -> Result<Option<ExportRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM platform.tenant_exports WHERE tenant_id = $1 AND status IN ('pending', 'running')
         ORDER BY created_at DESC LIMIT 1"
    );
    Ok(tx.query_opt(sql.as_str(), &[&tenant.to_string()]).await?.as_ref().map(export_from))
}

pub async fn export_by_id(tx: &PlatformTx, tenant: &TenantId, id: &str) -> Result<Option<ExportRow>> {
    let sql = format!("SELECT {COLUMNS} FROM platform.tenant_exports WHERE tenant_id = $1 AND id = $2");
    Ok(tx.query_opt(sql.as_str(), &[&tenant.to_string(), &id]).await?.as_ref().map(export_from))
}

/// Claims the oldest pending export, or a running one whose worker's lease ran out, for
/// `lease_secs` seconds; `None` when there is nothing to do. Replicas never claim the same row.
pub async fn claim_export(tx: &PlatformTx, lease_secs: f64) -> Result<Option<ExportRow>> {
    let sql = format!(
        "UPDATE platform.tenant_exports SET status = 'running', attempts = attempts + 1, started_at = clock_timestamp(),
                lease_until = clock_timestamp() + make_interval(secs => $1)
         WHERE id = (SELECT id FROM platform.tenant_exports
                     WHERE status = 'pending' OR (status = 'running' AND lease_until < clock_timestamp())
                     ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    );
    Ok(tx.query_opt(sql.as_str(), &[&lease_secs]).await?.as_ref().map(export_from))
}

/// The archive is stored: `done`, downloadable until `keep_days` from now.
pub async fn finish_export(tx: &PlatformTx, id: &str, key: &str, size: i64, sha256: &str, keep_days: i32) -> Result<()> {
    tx.execute(
        "UPDATE platform.tenant_exports SET status = 'done', storage_key = $2, size_bytes = $3, sha256 = $4, error = NULL,
                finished_at = clock_timestamp(), lease_until = NULL,
                expires_at = clock_timestamp() + make_interval(days => $5)
         WHERE id = $1",
        &[&id, &key, &size, &sha256, &keep_days],
    )
    .await?;
    Ok(())
}

/// A failed attempt: back to `pending` for another try, or `failed` for good (`last`).
pub async fn fail_export(tx: &PlatformTx, id: &str, error: &str, last: bool) -> Result<()> {
    tx.execute(
        "UPDATE platform.tenant_exports SET status = CASE WHEN $3 THEN 'failed' ELSE 'pending' END, error = $2,
                lease_until = NULL, finished_at = CASE WHEN $3 THEN clock_timestamp() END
         WHERE id = $1",
        &[&id, &error, &last],
    )
    .await?;
    Ok(())
}

/// Removes expired exports' rows; their storage keys, for the caller to delete.
pub async fn delete_expired_exports(tx: &PlatformTx) -> Result<Vec<String>> {
    let rows = tx
        .query("DELETE FROM platform.tenant_exports WHERE expires_at < clock_timestamp() RETURNING storage_key", &[])
        .await?;
    Ok(rows.iter().filter_map(|r| r.get::<_, Option<String>>(0)).collect())
}
