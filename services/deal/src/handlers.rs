//! HTTP handlers: extract (the permission is in the signature: `Can<perm::X>` answers 401/403
//! before the handler runs), hand over to one [`crate::service`] function, answer.

use axum::extract::State;
use crm_client_deal::{DealBasicInfo, DealBatch, DealContactInfo, DealResponse, ForecastResponse, PipelineStageInfo, PipelineViewResponse};
use crm_web::etag::{ETag, IfMatch, Tagged};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, Created, NoContent, Page, perm};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::input::{
    BasicParams, DealContactListParams, DealListParams, DealPatch, ForecastParams, NewDeal, NewDealContact, NewStage, PipelineParams,
    StageDeleteParams, StageListParams, fixed_sort,
};
use crate::service::{deal_contacts, deals, parse_id, pipeline as board, stages};

pub mod trash;

/// `{"data": [...]}` of the stage configuration.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StageList {
    pub data: Vec<PipelineStageInfo>,
}

/// `{"data": [...]}` of a deal's contacts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DealContactList {
    pub data: Vec<DealContactInfo>,
}

/// Create a deal. Company, primary contact and owner must exist (422); the owner defaults
/// to the caller, the stage to the first open one, the probability to the stage's.
#[utoipa::path(post, path = "/api/v1/deals", request_body = NewDeal, tag = "deals",
    responses((status = 201, description = "The deal", body = DealResponse), (status = 400), (status = 401), (status = 403),
        (status = 415), (status = 422), (status = 503)))]
pub async fn create_deal(
    State(state): State<AppState>,
    can: Can<perm::DealsWrite>,
    AppJson(input): AppJson<NewDeal>,
) -> Result<Tagged<DealResponse>, ApiError> {
    let deal = deals::create_deal(&state, &can, input).await?;
    Ok(Tagged::created(ETag::of(deal.updated_at), deal))
}

/// List deals: filters, whitelisted sorts, keyset pagination; names looked up in one batch
/// per service for the whole page.
#[utoipa::path(get, path = "/api/v1/deals", params(DealListParams), tag = "deals",
    responses((status = 200, description = "A page of deals", body = Page<DealResponse>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_deals(
    State(state): State<AppState>,
    can: Can<perm::DealsRead>,
    AppQuery(params): AppQuery<DealListParams>,
) -> Result<AppJson<Page<DealResponse>>, ApiError> {
    Ok(AppJson(deals::list_deals(&state, &can, &params).await?))
}

/// A deal with its stage history.
#[utoipa::path(get, path = "/api/v1/deals/{id}", params(("id" = i32, Path, description = "Deal id")), tag = "deals",
    responses((status = 200, description = "The deal", body = DealResponse), (status = 401), (status = 403), (status = 404)))]
pub async fn get_deal(State(state): State<AppState>, can: Can<perm::DealsRead>, AppPath(id): AppPath<String>) -> Result<Tagged<DealResponse>, ApiError> {
    let deal = deals::get_deal(&state, &can, parse_id(&id, "deal")?).await?;
    Ok(Tagged::new(ETag::of(deal.updated_at), deal))
}

/// Replace a deal (every field; `stage` required). Stage rules as for PATCH. The body may be
/// the deal exactly as read (read-only fields are ignored): only references that CHANGE are
/// checked with their service (422 when missing), so an unchanged company, contact or owner
/// that no longer exists does not fail the write. `If-Match` with the deal's `ETag`: 412 when
/// it changed meanwhile.
#[utoipa::path(put, path = "/api/v1/deals/{id}", params(("id" = i32, Path, description = "Deal id")), request_body = NewDeal, tag = "deals",
    responses((status = 200, description = "The deal", body = DealResponse), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 415), (status = 422), (status = 503)))]
pub async fn put_deal(
    State(state): State<AppState>,
    can: Can<perm::DealsWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(input): AppJson<NewDeal>,
) -> Result<Tagged<DealResponse>, ApiError> {
    let deal = deals::replace_deal(&state, &can, parse_id(&id, "deal")?, &if_match, input).await?;
    Ok(Tagged::new(ETag::of(deal.updated_at), deal))
}

/// Change some fields of a deal, e.g. its stage: unknown stage 422 `UNKNOWN_STAGE`; a won
/// or lost deal moves only with `"reopen": true` (422 `DEAL_CLOSED`); entering won/lost
/// sets `actual_close_date`; `close_reason` only for lost deals.
#[utoipa::path(patch, path = "/api/v1/deals/{id}", params(("id" = i32, Path, description = "Deal id")), request_body = DealPatch, tag = "deals",
    responses((status = 200, description = "The deal", body = DealResponse), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 415), (status = 422), (status = 503)))]
pub async fn patch_deal(
    State(state): State<AppState>,
    can: Can<perm::DealsWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(patch): AppJson<DealPatch>,
) -> Result<Tagged<DealResponse>, ApiError> {
    let deal = deals::patch_deal(&state, &can, parse_id(&id, "deal")?, &if_match, patch).await?;
    Ok(Tagged::new(ETag::of(deal.updated_at), deal))
}

/// Move a deal to the trash (`deal.trashed`; restorable until the tenant's
/// `trash_retention_days` have passed; its contacts and stage history are kept). With
/// `?erase=true` (admins only, also for a deal already in the trash) erase it for good
/// (`deal.deleted`: its contacts and stage history go with it).
#[utoipa::path(delete, path = "/api/v1/deals/{id}", params(("id" = i32, Path, description = "Deal id"), trash::EraseQuery), tag = "deals",
    responses((status = 204, description = "In the trash (or erased with erase=true)"), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 412)))]
pub async fn delete_deal(
    State(state): State<AppState>,
    can: Can<perm::DealsDelete>,
    AppPath(id): AppPath<String>,
    AppQuery(q): AppQuery<trash::EraseQuery>,
    if_match: IfMatch,
) -> Result<NoContent, ApiError> {
    deals::delete_deal(&state, &can, parse_id(&id, "deal")?, &if_match, q.erase.unwrap_or(false)).await?;
    Ok(NoContent)
}

/// A deal's id, title, stage and value (for other services).
#[utoipa::path(get, path = "/api/v1/deals/{id}/basic", params(("id" = i32, Path, description = "Deal id")), tag = "deals",
    responses((status = 200, description = "The deal in brief", body = DealBasicInfo), (status = 401), (status = 403), (status = 404)))]
pub async fn get_basic(State(state): State<AppState>, can: Can<perm::DealsRead>, AppPath(id): AppPath<String>) -> Result<AppJson<DealBasicInfo>, ApiError> {
    Ok(AppJson(deals::deal_basic(&state, &can, parse_id(&id, "deal")?).await?))
}

/// The deals among `ids` (at most 500) that exist in the caller's tenant.
#[utoipa::path(get, path = "/api/v1/deals/basic", params(BasicParams), tag = "deals",
    responses((status = 200, description = "The deals found", body = DealBatch), (status = 400), (status = 401), (status = 403)))]
pub async fn batch_basic(
    State(state): State<AppState>,
    can: Can<perm::DealsRead>,
    AppQuery(params): AppQuery<BasicParams>,
) -> Result<AppJson<DealBatch>, ApiError> {
    Ok(AppJson(DealBatch { data: deals::deals_basic(&state, &can, &params).await? }))
}

/// Every configured stage in order (also empty ones) with counts and totals computed in
/// SQL, and the most recently updated deals of each (`per_stage`).
#[utoipa::path(get, path = "/api/v1/deals/pipeline", params(PipelineParams), tag = "pipeline",
    responses((status = 200, description = "The pipeline", body = PipelineViewResponse), (status = 400), (status = 401), (status = 403)))]
pub async fn pipeline(
    State(state): State<AppState>,
    can: Can<perm::DealsRead>,
    AppQuery(params): AppQuery<PipelineParams>,
) -> Result<AppJson<PipelineViewResponse>, ApiError> {
    Ok(AppJson(board::pipeline(&state, &can, &params).await?))
}

/// Open deals (value and weighted value) by expected close period, won deals by actual
/// close period.
#[utoipa::path(get, path = "/api/v1/deals/forecast", params(ForecastParams), tag = "pipeline",
    responses((status = 200, description = "The forecast", body = ForecastResponse), (status = 400), (status = 401), (status = 403)))]
pub async fn forecast(
    State(state): State<AppState>,
    can: Can<perm::DealsRead>,
    AppQuery(params): AppQuery<ForecastParams>,
) -> Result<AppJson<ForecastResponse>, ApiError> {
    Ok(AppJson(board::forecast(&state, &can, &params).await?))
}

/// Add a contact to a deal, with a role (the contact must exist in contact-service: 422).
#[utoipa::path(post, path = "/api/v1/deals/{id}/contacts", params(("id" = i32, Path, description = "Deal id")), request_body = NewDealContact,
    tag = "deals",
    responses((status = 201, description = "The contact on the deal", body = DealContactInfo), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409), (status = 415), (status = 422), (status = 503)))]
pub async fn add_deal_contact(
    State(state): State<AppState>,
    can: Can<perm::DealsWrite>,
    AppPath(id): AppPath<String>,
    AppJson(input): AppJson<NewDealContact>,
) -> Result<Created<DealContactInfo>, ApiError> {
    Ok(Created(deal_contacts::add_deal_contact(&state, &can, parse_id(&id, "deal")?, &input).await?))
}

/// The contacts of a deal, with their names.
#[utoipa::path(get, path = "/api/v1/deals/{id}/contacts", params(("id" = i32, Path, description = "Deal id"), DealContactListParams), tag = "deals",
    responses((status = 200, description = "The deal's contacts", body = DealContactList), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn list_deal_contacts(
    State(state): State<AppState>,
    can: Can<perm::DealsRead>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<DealContactListParams>,
) -> Result<AppJson<DealContactList>, ApiError> {
    fixed_sort(params.sort.as_deref(), "created_at")?;
    Ok(AppJson(DealContactList { data: deal_contacts::list_deal_contacts(&state, &can, parse_id(&id, "deal")?).await? }))
}

/// Take a contact off a deal.
#[utoipa::path(delete, path = "/api/v1/deals/{id}/contacts/{contact_id}",
    params(("id" = i32, Path, description = "Deal id"), ("contact_id" = i32, Path, description = "Contact id")), tag = "deals",
    responses((status = 204, description = "Removed"), (status = 401), (status = 403), (status = 404)))]
pub async fn remove_deal_contact(
    State(state): State<AppState>,
    can: Can<perm::DealsWrite>,
    AppPath((id, contact_id)): AppPath<(String, String)>,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "deal")?;
    deal_contacts::remove_deal_contact(&state, &can, id, parse_id(&contact_id, "contact on this deal")?).await?;
    Ok(NoContent)
}

/// The stage configuration, in pipeline order.
#[utoipa::path(get, path = "/api/v1/pipeline/stages", params(StageListParams), tag = "pipeline",
    responses((status = 200, description = "The stages", body = StageList), (status = 400), (status = 401), (status = 403)))]
pub async fn list_stages(
    State(state): State<AppState>,
    can: Can<perm::PipelineStagesRead>,
    AppQuery(params): AppQuery<StageListParams>,
) -> Result<AppJson<StageList>, ApiError> {
    fixed_sort(params.sort.as_deref(), "position")?;
    Ok(AppJson(StageList { data: stages::list_stages(&state, &can).await? }))
}

/// One stage, with its `ETag` (for `If-Match` on PUT/DELETE).
#[utoipa::path(get, path = "/api/v1/pipeline/stages/{key}", params(("key" = String, Path, description = "Stage key")), tag = "pipeline",
    responses((status = 200, description = "The stage", body = PipelineStageInfo), (status = 401), (status = 403), (status = 404)))]
pub async fn get_stage(
    State(state): State<AppState>,
    can: Can<perm::PipelineStagesRead>,
    AppPath(key): AppPath<String>,
) -> Result<Tagged<PipelineStageInfo>, ApiError> {
    let (stage, version) = stages::get_stage(&state, &can, &key).await?;
    Ok(Tagged::new(ETag::of(version), stage))
}

/// Add a stage (admin).
#[utoipa::path(post, path = "/api/v1/pipeline/stages", request_body = NewStage, tag = "pipeline",
    responses((status = 201, description = "The stage", body = PipelineStageInfo), (status = 400), (status = 401), (status = 403),
        (status = 409), (status = 415)))]
pub async fn create_stage(
    State(state): State<AppState>,
    can: Can<perm::PipelineStagesWrite>,
    AppJson(input): AppJson<NewStage>,
) -> Result<Tagged<PipelineStageInfo>, ApiError> {
    let (stage, version) = stages::create_stage(&state, &can, &input).await?;
    Ok(Tagged::created(ETag::of(version), stage))
}

/// Replace a stage (admin); a new `key` renames it and its deals follow. The kind of a stage
/// holding deals does not change (409).
#[utoipa::path(put, path = "/api/v1/pipeline/stages/{key}", params(("key" = String, Path, description = "Stage key")),
    request_body = NewStage, tag = "pipeline",
    responses((status = 200, description = "The stage", body = PipelineStageInfo), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409), (status = 415)))]
pub async fn update_stage(
    State(state): State<AppState>,
    can: Can<perm::PipelineStagesWrite>,
    AppPath(key): AppPath<String>,
    if_match: IfMatch,
    AppJson(input): AppJson<NewStage>,
) -> Result<Tagged<PipelineStageInfo>, ApiError> {
    let (stage, version) = stages::update_stage(&state, &can, &key, &if_match, &input).await?;
    Ok(Tagged::new(ETag::of(version), stage))
}

/// Delete a stage (admin). One that holds deals is refused (409 `STAGE_IN_USE`) unless
/// `?move_to=` names a stage of the same kind to move them to.
#[utoipa::path(delete, path = "/api/v1/pipeline/stages/{key}", params(("key" = String, Path, description = "Stage key"), StageDeleteParams),
    tag = "pipeline",
    responses((status = 204, description = "Deleted"), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn delete_stage(
    State(state): State<AppState>,
    can: Can<perm::PipelineStagesDelete>,
    AppPath(key): AppPath<String>,
    if_match: IfMatch,
    AppQuery(params): AppQuery<StageDeleteParams>,
) -> Result<NoContent, ApiError> {
    stages::delete_stage(&state, &can, &key, &if_match, params.move_to.as_deref()).await?;
    Ok(NoContent)
}
