//! The stage configuration of a tenant's pipeline.

use chrono::{DateTime, Utc};
use crm_client_deal::{PipelineStageInfo, StageKind};
use crm_tenant::{DbError, TenantTx};
use tokio_postgres::Row;

const STAGE_COLUMNS: &str = "s.key, s.name, s.position, s.probability, s.kind";

pub(super) fn stage_from(row: &Row) -> PipelineStageInfo {
    let kind: String = row.get(4);
    PipelineStageInfo {
        key: row.get(0),
        name: row.get(1),
        position: row.get(2),
        probability: row.get(3),
        // The table's CHECK allows only these three.
        kind: StageKind::parse(&kind).unwrap_or(StageKind::Open),
    }
}

pub async fn list_stages(tx: &TenantTx) -> Result<Vec<PipelineStageInfo>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {STAGE_COLUMNS} FROM pipeline_stages s ORDER BY s.position, s.key")).await?;
    Ok(tx.query(&stmt, &[]).await?.iter().map(stage_from).collect())
}

/// Locks the stage rows (configuration changes are rare; deals referencing a stage being
/// deleted wait or fail on the foreign key).
pub async fn lock_stages(tx: &TenantTx) -> Result<Vec<PipelineStageInfo>, DbError> {
    let sql = format!("SELECT {STAGE_COLUMNS} FROM pipeline_stages s ORDER BY s.position, s.key FOR UPDATE");
    Ok(tx.query(sql.as_str(), &[]).await?.iter().map(stage_from).collect())
}

pub async fn insert_stage(tx: &TenantTx, s: &PipelineStageInfo) -> Result<PipelineStageInfo, DbError> {
    let sql = format!(
        "INSERT INTO pipeline_stages AS s (key, name, position, probability, kind) VALUES ($1, $2, $3, $4, $5)
         RETURNING {STAGE_COLUMNS}"
    );
    Ok(stage_from(&tx.query_one(sql.as_str(), &[&s.key, &s.name, &s.position, &s.probability, &s.kind.as_str()]).await?))
}

/// Replaces stage `key` (the key itself may change: deals follow through ON UPDATE CASCADE).
pub async fn update_stage(tx: &TenantTx, key: &str, s: &PipelineStageInfo) -> Result<Option<PipelineStageInfo>, DbError> {
    let sql = format!(
        "UPDATE pipeline_stages AS s SET key = $2, name = $3, position = $4, probability = $5, kind = $6, updated_at = now()
         WHERE s.key = $1 RETURNING {STAGE_COLUMNS}"
    );
    let row = tx.query_opt(sql.as_str(), &[&key, &s.key, &s.name, &s.position, &s.probability, &s.kind.as_str()]).await?;
    Ok(row.as_ref().map(stage_from))
}

pub async fn delete_stage(tx: &TenantTx, key: &str) -> Result<bool, DbError> {
    Ok(tx.execute("DELETE FROM pipeline_stages WHERE key = $1", &[&key]).await? == 1)
}

pub async fn stage_deal_count(tx: &TenantTx, key: &str) -> Result<i64, DbError> {
    Ok(tx.query_one("SELECT count(*) FROM deals WHERE stage_key = $1", &[&key]).await?.get(0))
}

/// The stage's version (`updated_at`: its ETag).
pub async fn stage_version(tx: &TenantTx, key: &str) -> Result<Option<DateTime<Utc>>, DbError> {
    let stmt = tx.prepare_cached("SELECT updated_at FROM pipeline_stages WHERE key = $1").await?;
    Ok(tx.query_opt(&stmt, &[&key]).await?.map(|r| r.get(0)))
}
