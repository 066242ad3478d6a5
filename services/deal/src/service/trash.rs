//! The trash of deals (issue 16), like contact-service's for contacts and companies.
//!
//! * `DELETE /deals/{id}` moves the deal to the trash (`deleted_at`, `deleted_by`) and
//!   publishes `deal.trashed`; it is hidden from lists, the board, the forecast, GET by id
//!   (404) and the `basic` lookups (not found), its contacts and stage history kept.
//! * `POST /trash/deals/{id}/restore` brings it back (`deal.restored`).
//! * Erase (`DELETE /deals/{id}?erase=true`, `DELETE /trash/deals/{id}`; admins) and the purge
//!   after the tenant's `trash_retention_days` delete it for good and publish the existing
//!   `deal.deleted` (its consumers drop the references).
//! * The purge ([`purge_task`]) is stateless: each sweep computes every tenant's cut-off and
//!   claims due deals with `FOR UPDATE SKIP LOCKED` (replicas never erase one twice).
//!
//! Who sees and restores what: the permission to delete deals. Admins and managers: every
//! trashed deal; sales reps: those they deleted, own or created.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use crm_client_deal::subjects::{DEAL_DELETED, DEAL_RESTORED, DEAL_TRASHED};
use crm_client_deal::{DealResponse, DealTrashed};
use crm_events::{publish, publish_many};
use crm_runtime::Task;
use crm_tenant::{TenantDb, TenantId};
use crm_web::etag::{ETag, IfMatch};
use crm_web::pagination::parse_cursor;
use crm_web::{ApiError, Can, Page, Role, parse_limit, perm};
use serde::Serialize;
use utoipa::ToSchema;

use super::{basic, own_only};
use crate::AppState;
use crate::repo::trash::{self as repo, TrashCursor};

/// A deal in the trash, as `GET /trash/deals` lists it: the deal (with its names) and the
/// trash's facts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrashedDealItem {
    #[serde(flatten)]
    pub deal: DealResponse,
    /// When it was moved to the trash.
    pub deleted_at: DateTime<Utc>,
    /// Who moved it (auth-service user id).
    pub deleted_by: Option<i32>,
    /// When the purge erases it for good: `deleted_at` + the tenant's `trash_retention_days`
    /// (the purge runs periodically, so it goes shortly after this instant).
    pub purge_at: DateTime<Utc>,
}

async fn retention(state: &AppState, tenant: &TenantId) -> Result<i32, ApiError> {
    let ptx = state.db.platform().await?;
    let days = repo::retention_days(&ptx, tenant).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    ptx.commit().await?;
    Ok(days)
}

/// `GET /trash/deals`: newest deletion first, cursor-paginated; names looked up like the
/// deal list's.
pub async fn list(state: &AppState, can: &Can<perm::DealsDelete>, limit: Option<&str>, cursor: Option<&str>) -> Result<Page<TrashedDealItem>, ApiError> {
    let limit = parse_limit(limit)?;
    let after: Option<TrashCursor> = parse_cursor(&state.cursors, cursor)?;
    let days = retention(state, &can.tenant_id).await?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let rows = repo::list(&tx, can.owner_filter(), after.as_ref(), limit).await?;
    tx.commit().await?;
    let page = Page::from_overfetch(rows, limit, None, |last| state.cursors.encode(&TrashCursor { at: last.deleted_at, id: last.row.id }));
    let facts: Vec<(DateTime<Utc>, Option<i32>)> = page.data.iter().map(|t| (t.deleted_at, t.deleted_by)).collect();
    let deals = state.lookups.respond(&can.ctx, page.data.into_iter().map(|t| t.row).collect()).await;
    let data = deals
        .into_iter()
        .zip(facts)
        .map(|(deal, (deleted_at, deleted_by))| TrashedDealItem {
            deal,
            deleted_at,
            deleted_by,
            purge_at: deleted_at + Duration::days(i64::from(days)),
        })
        .collect();
    Ok(Page { data, pagination: page.pagination })
}

/// `DELETE /deals/{id}`: moves a live deal to the trash; publishes `deal.trashed`. A sales
/// rep reaches the deals it owns or created; `If-Match` as for updates.
pub async fn trash_deal(state: &AppState, can: &Can<perm::DealsDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = crate::repo::deals::deal_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    if !can.reaches([current.fields.owner_id, current.created_by]) {
        return Err(own_only("delete"));
    }
    if_match.check(&ETag::of(current.updated_at))?;
    let deleted_at = repo::trash(&tx, id, Some(can.user_id)).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    publish(&tx, Some(can.user_id), DEAL_TRASHED, DealTrashed { deal: basic(&current), deleted_by: Some(can.user_id), deleted_at }).await?;
    tx.commit().await?;
    Ok(())
}

/// Erases a deal for good, live or trashed (admins only); publishes `deal.deleted`. For a
/// live deal a given `If-Match` must match.
pub async fn erase_deal(state: &AppState, can: &Can<perm::DealsDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    if can.role != Role::Admin {
        return Err(ApiError::forbidden("only admins erase records for good"));
    }
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = repo::any_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    if found.deleted_at.is_none() {
        if_match.check(&ETag::of(found.row.updated_at))?;
    }
    let row = crate::repo::deals::delete_deal(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    publish(&tx, Some(can.user_id), DEAL_DELETED, basic(&row)).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /trash/deals/{id}/restore`: the deal back with its contacts and history; publishes
/// `deal.restored`. 404 when it is not in the trash. Its company and contacts are not
/// re-checked: references were kept (one erased meanwhile was dropped by `*.deleted`).
pub async fn restore_deal(state: &AppState, can: &Can<perm::DealsDelete>, id: i32) -> Result<DealResponse, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = repo::any_for_update(&tx, id).await?.filter(|d| d.deleted_at.is_some()).ok_or_else(|| ApiError::not_found("deal in the trash"))?;
    if !can.reaches([found.deleted_by, found.row.fields.owner_id, found.row.created_by]) {
        return Err(own_only("restore"));
    }
    let row = repo::restore(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal in the trash"))?;
    publish(&tx, Some(can.user_id), DEAL_RESTORED, basic(&row)).await?;
    tx.commit().await?;
    Ok(state.lookups.respond_one(&can.ctx, row).await)
}

/// What one purge of a tenant erased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct DealPurgeReport {
    /// Deals erased (one `deal.deleted` each).
    pub deals: usize,
    /// The tenant's `trash_retention_days` the cut-off was computed with.
    pub retention_days: i32,
}

/// Deals erased per transaction: bounded transactions on a large backlog.
pub const PURGE_BATCH: i64 = 500;

/// Erases the tenant's deals trashed `retention_days` or more before `now`, in transactions
/// of at most [`PURGE_BATCH`], each publishing the `deal.deleted` of the deals it erased.
pub async fn purge_tenant(db: &TenantDb, tenant: &TenantId, retention_days: i32, now: DateTime<Utc>) -> Result<DealPurgeReport, ApiError> {
    let cutoff = now - Duration::days(i64::from(retention_days));
    let mut report = DealPurgeReport { deals: 0, retention_days };
    loop {
        let tx = db.tenant(tenant).await?;
        let rows = repo::purge(&tx, cutoff, PURGE_BATCH).await?;
        let events = rows
            .iter()
            .map(|r| serde_json::to_value(basic(r)).map(|v| (DEAL_DELETED, v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::internal)?;
        publish_many(&tx, None, events).await?;
        tx.commit().await?;
        report.deals += rows.len();
        if (rows.len() as i64) < PURGE_BATCH {
            return Ok(report);
        }
    }
}

/// One sweep of every tenant; a failing tenant is logged and retried at the next sweep.
pub async fn sweep(db: &TenantDb) -> Result<usize, ApiError> {
    let ptx = db.platform().await?;
    let tenants = repo::tenants_with_retention(&ptx).await?;
    ptx.commit().await?;
    let mut total = 0;
    for (tenant, days) in tenants {
        match purge_tenant(db, &tenant, days, Utc::now()).await {
            Ok(r) => {
                if r.deals > 0 {
                    tracing::info!(tenant_id = %tenant, deals = r.deals, "trashed deals purged");
                }
                total += r.deals;
            }
            Err(e) => tracing::warn!(tenant_id = %tenant, error = %e, "deal trash purge failed for a tenant; retried next sweep"),
        }
    }
    Ok(total)
}

/// The purge loop, returned from [`crate::build`] as a background task: a sweep at start,
/// then every `interval` (`TRASH_PURGE_POLL_SECS`). It keeps no state.
pub fn purge_task(db: TenantDb, interval: StdDuration, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Task {
    let future = async move {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            if let Err(e) = sweep(&db).await {
                tracing::warn!(error = %e, "deal trash purge sweep failed; retried next sweep");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    };
    Task { name: "deal trash purge", future: Box::pin(future) }
}

/// `POST /trash/deals/purge` (admins): purges the caller's tenant now.
pub async fn purge_now(state: &AppState, can: &Can<perm::DealsDelete>) -> Result<DealPurgeReport, ApiError> {
    if can.role != Role::Admin {
        return Err(ApiError::forbidden("only admins run the purge"));
    }
    let days = retention(state, &can.tenant_id).await?;
    purge_tenant(&state.db, &can.tenant_id, days, Utc::now()).await
}
