//! HTTP handlers: extract, hand over to [`crate::service`], answer.

use axum::extract::State;
use crm_client_deal::{DealBasicInfo, DealBatch, DealContactInfo, DealResponse, ForecastResponse, PipelineStageInfo, PipelineViewResponse};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, AuthUser, Created, NoContent, Page};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::input::{
    BasicParams, DealContactInput, DealInput, DealListParams, DealPatch, ForecastParams, PipelineParams, StageConfigInput,
    StageDeleteParams,
};
use crate::service::{self, Caller, parse_deal_id};

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
#[utoipa::path(post, path = "/api/v1/deals", request_body = DealInput, tag = "deals",
    responses((status = 201, body = DealResponse), (status = 400), (status = 401), (status = 403), (status = 422), (status = 503)))]
pub async fn create_deal(State(state): State<AppState>, caller: Caller, AppJson(input): AppJson<DealInput>) -> Result<Created<DealResponse>, ApiError> {
    caller.user.require(crm_web::Resource::Deals, crm_web::Action::Write)?;
    let changes = input.parse(false)?;
    Ok(Created(service::create_deal(&state, &caller, changes).await?))
}

/// List deals: filters, whitelisted sorts, keyset pagination; names looked up in one batch
/// per service for the whole page.
#[utoipa::path(get, path = "/api/v1/deals", params(DealListParams), tag = "deals",
    responses((status = 200, body = Page<DealResponse>), (status = 400), (status = 401)))]
pub async fn list_deals(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(params): AppQuery<DealListParams>,
) -> Result<AppJson<Page<DealResponse>>, ApiError> {
    Ok(AppJson(service::list_deals(&state, &caller, &params).await?))
}

/// A deal with its stage history.
#[utoipa::path(get, path = "/api/v1/deals/{id}", tag = "deals",
    responses((status = 200, body = DealResponse), (status = 401), (status = 404)))]
pub async fn get_deal(State(state): State<AppState>, caller: Caller, AppPath(id): AppPath<String>) -> Result<AppJson<DealResponse>, ApiError> {
    Ok(AppJson(service::get_deal(&state, &caller, parse_deal_id(&id)?).await?))
}

/// Replace a deal (every field; `stage` required). Stage rules as for PATCH.
#[utoipa::path(put, path = "/api/v1/deals/{id}", request_body = DealInput, tag = "deals",
    responses((status = 200, body = DealResponse), (status = 400), (status = 403), (status = 404), (status = 422)))]
pub async fn put_deal(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    AppJson(input): AppJson<DealInput>,
) -> Result<AppJson<DealResponse>, ApiError> {
    let id = parse_deal_id(&id)?;
    caller.user.require(crm_web::Resource::Deals, crm_web::Action::Write)?;
    let changes = input.parse(true)?;
    Ok(AppJson(service::update_deal(&state, &caller, id, changes).await?))
}

/// Change some fields of a deal, e.g. its stage: unknown stage 422 `UNKNOWN_STAGE`; a won
/// or lost deal moves only with `"reopen": true` (422 `DEAL_CLOSED`); entering won/lost
/// sets `actual_close_date`; `close_reason` only for lost deals.
#[utoipa::path(patch, path = "/api/v1/deals/{id}", request_body = DealPatch, tag = "deals",
    responses((status = 200, body = DealResponse), (status = 400), (status = 403), (status = 404), (status = 422)))]
pub async fn patch_deal(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    AppJson(patch): AppJson<DealPatch>,
) -> Result<AppJson<DealResponse>, ApiError> {
    let id = parse_deal_id(&id)?;
    caller.user.require(crm_web::Resource::Deals, crm_web::Action::Write)?;
    let changes = patch.parse()?;
    Ok(AppJson(service::update_deal(&state, &caller, id, changes).await?))
}

#[utoipa::path(delete, path = "/api/v1/deals/{id}", tag = "deals",
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_deal(State(state): State<AppState>, caller: Caller, AppPath(id): AppPath<String>) -> Result<NoContent, ApiError> {
    service::delete_deal(&state, &caller, parse_deal_id(&id)?).await?;
    Ok(NoContent)
}

#[utoipa::path(get, path = "/api/v1/deals/{id}/basic", tag = "deals",
    responses((status = 200, body = DealBasicInfo), (status = 401), (status = 404)))]
pub async fn get_basic(State(state): State<AppState>, caller: Caller, AppPath(id): AppPath<String>) -> Result<AppJson<DealBasicInfo>, ApiError> {
    let id = parse_deal_id(&id)?;
    let found = service::deals_basic(&state, &caller, &[id]).await?;
    found.into_iter().next().map(AppJson).ok_or_else(|| ApiError::not_found("deal"))
}

/// The deals among `ids` (at most 500) that exist in the caller's tenant.
#[utoipa::path(get, path = "/api/v1/deals/basic", params(BasicParams), tag = "deals",
    responses((status = 200, body = DealBatch), (status = 400), (status = 401)))]
pub async fn batch_basic(State(state): State<AppState>, caller: Caller, AppQuery(params): AppQuery<BasicParams>) -> Result<AppJson<DealBatch>, ApiError> {
    let ids = params.ids()?;
    Ok(AppJson(DealBatch { data: service::deals_basic(&state, &caller, &ids).await? }))
}

/// Every configured stage in order (also empty ones) with counts and totals computed in
/// SQL, and the most recently updated deals of each (`per_stage`).
#[utoipa::path(get, path = "/api/v1/deals/pipeline", params(PipelineParams), tag = "pipeline",
    responses((status = 200, body = PipelineViewResponse), (status = 400), (status = 401)))]
pub async fn pipeline(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(params): AppQuery<PipelineParams>,
) -> Result<AppJson<PipelineViewResponse>, ApiError> {
    Ok(AppJson(service::pipeline(&state, &caller, &params).await?))
}

/// Open deals (value and weighted value) by expected close period, won deals by actual
/// close period.
#[utoipa::path(get, path = "/api/v1/deals/forecast", params(ForecastParams), tag = "pipeline",
    responses((status = 200, body = ForecastResponse), (status = 400), (status = 401)))]
pub async fn forecast(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(params): AppQuery<ForecastParams>,
) -> Result<AppJson<ForecastResponse>, ApiError> {
    let params = params.parse()?;
    Ok(AppJson(service::forecast(&state, &caller, &params).await?))
}

#[utoipa::path(post, path = "/api/v1/deals/{id}/contacts", request_body = DealContactInput, tag = "deals",
    responses((status = 201, body = DealContactInfo), (status = 400), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn add_deal_contact(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    AppJson(input): AppJson<DealContactInput>,
) -> Result<Created<DealContactInfo>, ApiError> {
    let id = parse_deal_id(&id)?;
    caller.user.require(crm_web::Resource::Deals, crm_web::Action::Write)?;
    let (contact_id, role) = input.parse()?;
    Ok(Created(service::add_deal_contact(&state, &caller, id, contact_id, &role).await?))
}

#[utoipa::path(get, path = "/api/v1/deals/{id}/contacts", tag = "deals",
    responses((status = 200, body = DealContactList), (status = 401), (status = 404)))]
pub async fn list_deal_contacts(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<DealContactList>, ApiError> {
    Ok(AppJson(DealContactList { data: service::list_deal_contacts(&state, &caller, parse_deal_id(&id)?).await? }))
}

#[utoipa::path(delete, path = "/api/v1/deals/{id}/contacts/{contact_id}", tag = "deals",
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn remove_deal_contact(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((id, contact_id)): AppPath<(String, String)>,
) -> Result<NoContent, ApiError> {
    let id = parse_deal_id(&id)?;
    let contact_id = contact_id.parse::<i32>().map_err(|_| ApiError::not_found("contact on this deal"))?;
    service::remove_deal_contact(&state, &caller, id, contact_id).await?;
    Ok(NoContent)
}

#[utoipa::path(get, path = "/api/v1/pipeline/stages", tag = "pipeline",
    responses((status = 200, body = StageList), (status = 401), (status = 403)))]
pub async fn list_stages(State(state): State<AppState>, user: AuthUser) -> Result<AppJson<StageList>, ApiError> {
    Ok(AppJson(StageList { data: service::list_stages(&state, &user).await? }))
}

/// Add a stage (admin).
#[utoipa::path(post, path = "/api/v1/pipeline/stages", request_body = StageConfigInput, tag = "pipeline",
    responses((status = 201, body = PipelineStageInfo), (status = 400), (status = 403), (status = 409)))]
pub async fn create_stage(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(input): AppJson<StageConfigInput>,
) -> Result<Created<PipelineStageInfo>, ApiError> {
    Ok(Created(service::create_stage(&state, &user, &input).await?))
}

/// Replace a stage (admin); a new `key` renames it and its deals follow. The kind of a stage
/// holding deals does not change (409).
#[utoipa::path(put, path = "/api/v1/pipeline/stages/{key}", request_body = StageConfigInput, tag = "pipeline",
    responses((status = 200, body = PipelineStageInfo), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn update_stage(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(key): AppPath<String>,
    AppJson(input): AppJson<StageConfigInput>,
) -> Result<AppJson<PipelineStageInfo>, ApiError> {
    Ok(AppJson(service::update_stage(&state, &user, &key, &input).await?))
}

/// Delete a stage (admin). One that holds deals is refused (409 `STAGE_IN_USE`) unless
/// `?move_to=` names a stage of the same kind to move them to.
#[utoipa::path(delete, path = "/api/v1/pipeline/stages/{key}", params(StageDeleteParams), tag = "pipeline",
    responses((status = 204), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn delete_stage(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(key): AppPath<String>,
    AppQuery(params): AppQuery<StageDeleteParams>,
) -> Result<NoContent, ApiError> {
    service::delete_stage(&state, &user, &key, params.move_to.as_deref()).await?;
    Ok(NoContent)
}
