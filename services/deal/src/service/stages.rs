//! The stage configuration of the pipeline (admin): list, add, replace (renaming moves the
//! deals along), delete (moving the deals to a stage of the same kind).

use crm_client_deal::subjects::DEAL_STAGE_CHANGED;
use crm_client_deal::{DealStageChangedEvent, PipelineStageInfo, StageKind};
use crm_events::publish;
use crm_tenant::DbError;
use chrono::{DateTime, Utc};
use crm_web::etag::{ETag, IfMatch};
use crm_web::{ApiError, Can, codes, perm};
use serde_json::json;
use tokio_postgres::error::SqlState;

use super::basic;
use crate::AppState;
use crate::domain::Stages;
use crate::input::{NewStage, movable};
use crate::repo::deals;
use crate::repo::stages as repo;

/// A unique violation on the stage key is 409 `STAGE_EXISTS`.
fn stage_exists(err: DbError) -> ApiError {
    match err {
        DbError::Query(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            ApiError::conflict(codes::STAGE_EXISTS, "a stage with this key exists")
        }
        other => other.into(),
    }
}

fn needs_open_stage() -> ApiError {
    ApiError::conflict(codes::LAST_OPEN_STAGE, "the pipeline needs at least one open stage")
}

pub async fn list_stages(state: &AppState, can: &Can<perm::PipelineStagesRead>) -> Result<Vec<PipelineStageInfo>, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let stages = repo::list_stages(&tx).await?;
    tx.commit().await?;
    Ok(stages)
}

/// One stage and its version (`updated_at`, the ETag).
pub async fn get_stage(state: &AppState, can: &Can<perm::PipelineStagesRead>, key: &str) -> Result<(PipelineStageInfo, DateTime<Utc>), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let stage = repo::list_stages(&tx).await?.into_iter().find(|s| s.key == key).ok_or_else(|| ApiError::not_found("stage"))?;
    let version = repo::stage_version(&tx, key).await?.ok_or_else(|| ApiError::not_found("stage"))?;
    tx.commit().await?;
    Ok((stage, version))
}

/// Adds a stage; without a position it goes after the last one.
pub async fn create_stage(
    state: &AppState,
    can: &Can<perm::PipelineStagesWrite>,
    input: &NewStage,
) -> Result<(PipelineStageInfo, DateTime<Utc>), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let stages = repo::lock_stages(&tx).await?;
    let next = stages.iter().map(|s| s.position).max().map_or(1, |p| p.saturating_add(1));
    let stage = input.parse(None, next)?;
    let created = repo::insert_stage(&tx, &stage).await.map_err(stage_exists)?;
    let version = repo::stage_version(&tx, &created.key).await?.ok_or_else(|| ApiError::internal("stage vanished"))?;
    tx.commit().await?;
    Ok((created, version))
}

/// Replaces stage `key`; a new `key` renames it and its deals follow. The kind of a stage
/// holding deals does not change (409 `STAGE_IN_USE`); the pipeline keeps an open stage.
pub async fn update_stage(
    state: &AppState,
    can: &Can<perm::PipelineStagesWrite>,
    key: &str,
    if_match: &IfMatch,
    input: &NewStage,
) -> Result<(PipelineStageInfo, DateTime<Utc>), ApiError> {
    let stage = input.parse(Some(key), 0)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let stages = repo::lock_stages(&tx).await?;
    let current = stages.iter().find(|s| s.key == key).ok_or_else(|| ApiError::not_found("stage"))?;
    let version = repo::stage_version(&tx, key).await?.ok_or_else(|| ApiError::not_found("stage"))?;
    if_match.check(&ETag::of(version))?;
    if stage.kind != current.kind && repo::stage_deal_count(&tx, key).await? > 0 {
        return Err(ApiError::conflict(codes::STAGE_IN_USE, "the stage holds deals: its kind cannot change"));
    }
    if !stages.iter().any(|s| if s.key == key { stage.kind == StageKind::Open } else { s.kind == StageKind::Open }) {
        return Err(needs_open_stage());
    }
    let updated = repo::update_stage(&tx, key, &stage).await.map_err(stage_exists)?.ok_or_else(|| ApiError::not_found("stage"))?;
    let version = repo::stage_version(&tx, &updated.key).await?.ok_or_else(|| ApiError::internal("stage vanished"))?;
    tx.commit().await?;
    Ok((updated, version))
}

/// Deletes a stage; one that holds deals only with `move_to` (a stage of the same kind),
/// each moved deal getting a history entry and a `deal.stage_changed` event.
pub async fn delete_stage(
    state: &AppState,
    can: &Can<perm::PipelineStagesDelete>,
    key: &str,
    if_match: &IfMatch,
    move_to: Option<&str>,
) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let stages = Stages(repo::lock_stages(&tx).await?);
    let current = stages.get(key).ok_or_else(|| ApiError::not_found("stage"))?;
    let version = repo::stage_version(&tx, key).await?.ok_or_else(|| ApiError::not_found("stage"))?;
    if_match.check(&ETag::of(version))?;
    if current.kind == StageKind::Open && !stages.0.iter().any(|s| s.key != key && s.kind == StageKind::Open) {
        return Err(needs_open_stage());
    }
    let held = repo::stage_deal_count(&tx, key).await?;
    if held > 0 {
        let Some(move_to) = move_to.map(str::trim).filter(|m| !m.is_empty()) else {
            return Err(ApiError::conflict(codes::STAGE_IN_USE, "the stage holds deals: give ?move_to=<stage key> to move them")
                .with_details(json!({ "deal_count": held })));
        };
        let target = stages.require(move_to)?;
        if target.key == key || !movable(current.kind, target.kind) {
            return Err(ApiError::unprocessable(
                codes::INVALID_STAGE_MOVE,
                format!("deals of a {} stage move to another {} stage", current.kind.as_str(), current.kind.as_str()),
            ));
        }
        let moved = deals::move_stage_deals(&tx, key, target, can.user_id).await?;
        for row in &moved {
            let data = DealStageChangedEvent { deal: basic(row), from_stage: key.to_owned(), to_stage: target.key.clone() };
            publish(&tx, Some(can.user_id), DEAL_STAGE_CHANGED, data).await?;
        }
    }
    repo::delete_stage(&tx, key).await?;
    tx.commit().await?;
    Ok(())
}
