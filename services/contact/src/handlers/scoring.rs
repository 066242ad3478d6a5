//! `/scoring/rules` (lead scoring rules: `automation` read/write) and
//! `GET /contacts/{id}/score` (issue 16).

use axum::extract::State;
use crm_web::{ApiError, AppJson, AppPath, Can, ETag, IfMatch, NoContent, Tagged, perm};

use super::parse_id;
use crate::AppState;
use crate::service::scoring::{self as service, NewScoringRule, ScoreExplanation, ScoringRule, ScoringRuleList};

/// The contact's score now, rule by rule.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/score", params(("id" = i32, Path, description = "Contact id")), tag = "scoring",
    responses((status = 200, body = ScoreExplanation), (status = 403), (status = 404)))]
pub async fn contact_score(State(state): State<AppState>, can: Can<perm::ContactsRead>, AppPath(id): AppPath<String>) -> Result<AppJson<ScoreExplanation>, ApiError> {
    let id = parse_id(&id, "contact")?;
    Ok(AppJson(service::explain(&state, &can, id).await?))
}

/// Every scoring rule of the tenant, in id order (the defaults have `created_by: null`).
#[utoipa::path(get, path = "/api/v1/scoring/rules", tag = "scoring", responses((status = 200, body = ScoringRuleList), (status = 403)))]
pub async fn list_scoring_rules(State(state): State<AppState>, can: Can<perm::AutomationRead>) -> Result<AppJson<ScoringRuleList>, ApiError> {
    Ok(AppJson(service::list(&state, &can).await?))
}

/// Adds a rule (admins and managers).
#[utoipa::path(post, path = "/api/v1/scoring/rules", request_body = NewScoringRule, tag = "scoring",
    responses((status = 201, body = ScoringRule), (status = 400), (status = 403), (status = 415)))]
pub async fn create_scoring_rule(State(state): State<AppState>, can: Can<perm::AutomationWrite>, AppJson(input): AppJson<NewScoringRule>) -> Result<Tagged<ScoringRule>, ApiError> {
    let rule = service::create(&state, &can, input).await?;
    Ok(Tagged::created(ETag::of(rule.updated_at), rule))
}

/// Replaces a rule (admins and managers).
#[utoipa::path(put, path = "/api/v1/scoring/rules/{id}", params(("id" = i32, Path, description = "Rule id")), request_body = NewScoringRule, tag = "scoring",
    responses((status = 200, body = ScoringRule), (status = 400), (status = 403), (status = 404), (status = 412), (status = 415)))]
pub async fn put_scoring_rule(
    State(state): State<AppState>,
    can: Can<perm::AutomationWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(input): AppJson<NewScoringRule>,
) -> Result<Tagged<ScoringRule>, ApiError> {
    let id = parse_id(&id, "scoring rule")?;
    let rule = service::replace(&state, &can, id, &if_match, input).await?;
    Ok(Tagged::new(ETag::of(rule.updated_at), rule))
}

/// Deletes a rule (admins and managers).
#[utoipa::path(delete, path = "/api/v1/scoring/rules/{id}", params(("id" = i32, Path, description = "Rule id")), tag = "scoring",
    responses((status = 204, description = "deleted"), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_scoring_rule(State(state): State<AppState>, can: Can<perm::AutomationWrite>, AppPath(id): AppPath<String>, if_match: IfMatch) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "scoring rule")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}
