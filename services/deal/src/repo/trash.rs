//! The trash of deals (issue 16): moving a deal in and out (`deleted_at`, `deleted_by`, deal
//! V4), the trash listing, the purge of deals past the tenant's retention, and the
//! retention itself (`platform.tenant_settings.trash_retention_days`). Every other query of
//! this crate hides trashed deals (`deleted_at IS NULL`).

use chrono::{DateTime, Utc};
use crm_tenant::{DbError, PlatformTx, TenantId, TenantTx};
use serde::{Deserialize, Serialize};

use super::deals::{DEAL_COLUMNS, deal_from};
use super::DealRow;

/// Retention when a tenant never changed its settings (tenant-service's default, global V8).
pub const DEFAULT_RETENTION_DAYS: i32 = 30;

/// A deal in the trash: the row, who moved it there and when.
#[derive(Debug, Clone)]
pub struct TrashedDeal {
    pub row: DealRow,
    pub deleted_at: DateTime<Utc>,
    pub deleted_by: Option<i32>,
}

/// Keyset position in the trash listing (newest deletion first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrashCursor {
    pub at: DateTime<Utc>,
    pub id: i32,
}

/// The deal columns, then `deleted_at`, `deleted_by`.
fn trashed_from(r: &tokio_postgres::Row) -> TrashedDeal {
    let n = DEAL_COLUMNS.split(',').count();
    TrashedDeal { row: deal_from(r), deleted_at: r.get(n), deleted_by: r.get(n + 1) }
}

/// One page of trashed deals (`limit + 1` rows), newest deletion first; with `own`, only
/// those the user deleted, owns or created (a sales rep's scope).
pub async fn list(tx: &TenantTx, own: Option<i32>, after: Option<&TrashCursor>, limit: i64) -> Result<Vec<TrashedDeal>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {DEAL_COLUMNS}, d.deleted_at, d.deleted_by FROM deals d
             WHERE d.deleted_at IS NOT NULL
               AND ($1::int4 IS NULL OR d.deleted_by = $1 OR d.owner_id = $1 OR d.created_by = $1)
               AND ($2::timestamptz IS NULL OR (d.deleted_at, d.id) < ($2::timestamptz, $3::int4))
             ORDER BY d.deleted_at DESC, d.id DESC LIMIT $4"
        ))
        .await?;
    let (at, id) = match after {
        Some(c) => (Some(c.at), Some(c.id)),
        None => (None, None),
    };
    Ok(tx.query(&stmt, &[&own, &at, &id, &(limit + 1)]).await?.iter().map(trashed_from).collect())
}

/// The deal, trashed or not, locked for the rest of the transaction.
pub async fn any_for_update(tx: &TenantTx, id: i32) -> Result<Option<TrashedDealState>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {DEAL_COLUMNS}, d.deleted_at, d.deleted_by FROM deals d WHERE d.id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| {
        let n = DEAL_COLUMNS.split(',').count();
        TrashedDealState { row: deal_from(&r), deleted_at: r.get(n), deleted_by: r.get(n + 1) }
    }))
}

/// A deal whatever its state: `deleted_at` is `None` while it is live.
#[derive(Debug, Clone)]
pub struct TrashedDealState {
    pub row: DealRow,
    pub deleted_at: Option<DateTime<Utc>>,
    pub deleted_by: Option<i32>,
}

/// Moves a live deal to the trash; returns the deletion time (`None`: not live). Its
/// contacts, stage history and references stay. `updated_at` stays (the deal itself did not
/// change).
pub async fn trash(tx: &TenantTx, id: i32, by: Option<i32>) -> Result<Option<DateTime<Utc>>, DbError> {
    let stmt = tx
        .prepare_cached("UPDATE deals SET deleted_at = now(), deleted_by = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING deleted_at")
        .await?;
    Ok(tx.query_opt(&stmt, &[&id, &by]).await?.map(|r| r.get(0)))
}

/// Brings a trashed deal back; returns it (`None`: it was not in the trash).
pub async fn restore(tx: &TenantTx, id: i32) -> Result<Option<DealRow>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE deals AS d SET deleted_at = NULL, deleted_by = NULL, updated_at = now()
             WHERE d.id = $1 AND d.deleted_at IS NOT NULL RETURNING {DEAL_COLUMNS}"
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(deal_from))
}

/// Erases up to `limit` deals trashed at or before `cutoff`, oldest first, and returns them.
/// Rows another purge holds are skipped (`SKIP LOCKED`): two replicas never erase (and
/// announce) the same deal.
pub async fn purge(tx: &TenantTx, cutoff: DateTime<Utc>, limit: i64) -> Result<Vec<DealRow>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "WITH due AS (
                 SELECT id FROM deals WHERE deleted_at <= $1 ORDER BY deleted_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             DELETE FROM deals AS d USING due WHERE d.id = due.id RETURNING {DEAL_COLUMNS}"
        ))
        .await?;
    let mut rows: Vec<DealRow> = tx.query(&stmt, &[&cutoff, &limit]).await?.iter().map(deal_from).collect();
    rows.sort_by_key(|d| d.id);
    Ok(rows)
}

/// The tenant's `trash_retention_days` (tenant-service's setting; the default without a
/// settings row). `None` when the tenant does not exist.
pub async fn retention_days(tx: &PlatformTx, tenant: &TenantId) -> Result<Option<i32>, DbError> {
    let row = tx
        .query_opt(
            "SELECT coalesce(s.trash_retention_days, $2) FROM platform.tenants t
             LEFT JOIN platform.tenant_settings s ON s.tenant_id = t.id WHERE t.id = $1",
            &[&tenant.to_string(), &DEFAULT_RETENTION_DAYS],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Every tenant with its retention (one query per sweep, however many tenants).
pub async fn tenants_with_retention(tx: &PlatformTx) -> Result<Vec<(TenantId, i32)>, DbError> {
    let rows = tx
        .query(
            "SELECT t.id, coalesce(s.trash_retention_days, $1) FROM platform.tenants t
             LEFT JOIN platform.tenant_settings s ON s.tenant_id = t.id ORDER BY t.id",
            &[&DEFAULT_RETENTION_DAYS],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id: &str = r.get(0);
            let tenant = TenantId::parse(id).map_err(|_| DbError::Refused("a tenants row has an invalid id"))?;
            Ok((tenant, r.get(1)))
        })
        .collect()
}
