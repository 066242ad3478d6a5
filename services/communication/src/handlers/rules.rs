//! `/automation/rules` and their runs.

use axum::extract::State;
use crm_client_communication::{Rule, RuleRun};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, ReplaceJson, Tagged, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::automation::{NewRule, RulePatch};
use crate::service::{parse_id, rules as service};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RuleListParams {
    /// `id` (the default and only order).
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RunListParams {
    /// pending, succeeded, failed, parked, loop_stopped
    pub status: Option<String>,
    /// `-created_at` (the default and only order: newest first).
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

/// Creates a rule `{name, enabled, trigger: {event}, conditions, actions}` (admins, managers).
#[utoipa::path(post, path = "/api/v1/automation/rules", request_body = NewRule, tag = "automation",
    responses((status = 201, description = "Created", body = Rule), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422), (status = 501)))]
pub async fn create_rule(State(state): State<AppState>, can: Can<perm::AutomationWrite>, AppJson(body): AppJson<NewRule>) -> Result<Tagged<Rule>, ApiError> {
    let r = service::create(&state, &can, body).await?;
    Ok(Tagged::created(ETag::of(r.updated_at), r))
}

#[utoipa::path(get, path = "/api/v1/automation/rules", params(RuleListParams), tag = "automation",
    responses((status = 200, description = "A page of rules", body = Page<Rule>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_rules(State(state): State<AppState>, can: Can<perm::AutomationRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<Page<Rule>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/automation/rules/{id}", params(("id" = i32, Path, description = "Rule id")), tag = "automation",
    responses((status = 200, description = "The rule", body = Rule), (status = 401), (status = 403), (status = 404)))]
pub async fn get_rule(State(state): State<AppState>, can: Can<perm::AutomationRead>, AppPath(id): AppPath<String>) -> Result<Tagged<Rule>, ApiError> {
    let id = parse_id(&id, "rule")?;
    let r = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(r.updated_at), r))
}

#[utoipa::path(put, path = "/api/v1/automation/rules/{id}", params(("id" = i32, Path, description = "Rule id")), request_body = NewRule, tag = "automation",
    responses((status = 200, description = "Replaced", body = Rule), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409), (status = 412), (status = 422), (status = 501)))]
pub async fn replace_rule(
    State(state): State<AppState>,
    can: Can<perm::AutomationWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    ReplaceJson(body, _): ReplaceJson<NewRule, RuleReadOnly>,
) -> Result<Tagged<Rule>, ApiError> {
    let id = parse_id(&id, "rule")?;
    let r = service::replace(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(r.updated_at), r))
}

/// Switches a rule on or off (`{"enabled": false}`) or renames it.
#[utoipa::path(patch, path = "/api/v1/automation/rules/{id}", params(("id" = i32, Path, description = "Rule id")), request_body = RulePatch, tag = "automation",
    responses((status = 200, description = "Changed", body = Rule), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409), (status = 412)))]
pub async fn patch_rule(
    State(state): State<AppState>,
    can: Can<perm::AutomationWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(body): AppJson<RulePatch>,
) -> Result<Tagged<Rule>, ApiError> {
    let id = parse_id(&id, "rule")?;
    let r = service::patch(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(r.updated_at), r))
}

#[utoipa::path(delete, path = "/api/v1/automation/rules/{id}", params(("id" = i32, Path, description = "Rule id")), tag = "automation",
    responses((status = 204, description = "Deleted with its runs"), (status = 401), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_rule(State(state): State<AppState>, can: Can<perm::AutomationDelete>, AppPath(id): AppPath<String>, if_match: IfMatch) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "rule")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}

/// Every run of the rule (status, error, attempts, the event), newest first.
#[utoipa::path(get, path = "/api/v1/automation/rules/{id}/runs", params(("id" = i32, Path, description = "Rule id"), RunListParams), tag = "automation",
    responses((status = 200, description = "A page of runs, newest first", body = Page<RuleRun>), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn list_rule_runs(
    State(state): State<AppState>,
    can: Can<perm::AutomationRead>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<RuleRun>>, ApiError> {
    let id = parse_id(&id, "rule")?;
    Ok(AppJson(service::runs(&state, &can, id, &params).await?))
}

/// Runs a failed or parked run again now (its attempts keep counting).
#[utoipa::path(post, path = "/api/v1/automation/runs/{id}/retry", params(("id" = i32, Path, description = "Run id")), tag = "automation",
    responses((status = 200, description = "Pending again", body = RuleRun), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn retry_rule_run(State(state): State<AppState>, can: Can<perm::AutomationWrite>, AppPath(id): AppPath<String>) -> Result<AppJson<RuleRun>, ApiError> {
    let id = parse_id(&id, "run")?;
    Ok(AppJson(service::retry(&state, &can, id).await?))
}

/// The fields of a rule only a response carries (a GET body can be PUT back).
pub struct RuleReadOnly;

impl crm_web::ReadOnlyFields for RuleReadOnly {
    const READ_ONLY: &'static [&'static str] = &["id", "created_at", "created_by", "updated_at"];
}
