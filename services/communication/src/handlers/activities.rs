//! `/activities`: log, list, read, replace, patch, delete.

use axum::extract::State;
use crm_client_communication::{ActivityDetails, NewActivity};
use crm_web::{ApiError, AppJson, ReplaceJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, Tagged, perm};
use utoipa::IntoParams;

use crate::AppState;
use crate::domain::ActivityPatch;
use crate::service::{activities as service, parse_id};

/// Query parameters of `GET /activities` (all optional).
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ActivityListParams {
    /// email, call, meeting, note, task
    #[serde(rename = "type")]
    pub r#type: Option<String>,
    /// scheduled, completed, cancelled
    pub status: Option<String>,
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub owner_id: Option<i32>,
    pub needs_review: Option<bool>,
    /// Occurred at or after (RFC 3339).
    pub from: Option<String>,
    /// Occurred before (RFC 3339).
    pub to: Option<String>,
    /// `occurred_at` (default `-occurred_at`, newest first) or `created_at`; `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

/// Logs an activity (`activity.logged`); references are checked against their services.
#[utoipa::path(post, path = "/api/v1/activities", request_body = NewActivity, tag = "activities",
    responses((status = 201, description = "Logged", body = ActivityDetails), (status = 400), (status = 401), (status = 403), (status = 422), (status = 503)))]
pub async fn create_activity(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesWrite>,
    AppJson(body): AppJson<NewActivity>,
) -> Result<Tagged<ActivityDetails>, ApiError> {
    let activity = service::create(&state, &can, body).await?;
    Ok(Tagged::created(ETag::of(activity.updated_at), activity))
}

/// Activities with filters, newest first by default, with the names of what they link.
#[utoipa::path(get, path = "/api/v1/activities", params(ActivityListParams), tag = "activities",
    responses((status = 200, description = "A page of activities", body = Page<ActivityDetails>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_activities(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesRead>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<ActivityDetails>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/activities/{id}", params(("id" = i32, Path, description = "Activity id")), tag = "activities",
    responses((status = 200, description = "The activity", body = ActivityDetails), (status = 401), (status = 403), (status = 404)))]
pub async fn get_activity(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesRead>,
    AppPath(id): AppPath<String>,
) -> Result<Tagged<ActivityDetails>, ApiError> {
    let id = parse_id(&id, "activity")?;
    let activity = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(activity.updated_at), activity))
}

#[utoipa::path(put, path = "/api/v1/activities/{id}", params(("id" = i32, Path, description = "Activity id")), request_body = NewActivity, tag = "activities",
    responses((status = 200, description = "Replaced", body = ActivityDetails), (status = 400), (status = 401), (status = 403), (status = 404), (status = 422), (status = 503)))]
pub async fn replace_activity(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    ReplaceJson(body, _): ReplaceJson<NewActivity, ActivityReadOnly>,
) -> Result<Tagged<ActivityDetails>, ApiError> {
    let id = parse_id(&id, "activity")?;
    let activity = service::replace(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(activity.updated_at), activity))
}

#[utoipa::path(patch, path = "/api/v1/activities/{id}", params(("id" = i32, Path, description = "Activity id")), request_body = ActivityPatch, tag = "activities",
    responses((status = 200, description = "Changed", body = ActivityDetails), (status = 400), (status = 401), (status = 403), (status = 404), (status = 422), (status = 503)))]
pub async fn patch_activity(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(body): AppJson<ActivityPatch>,
) -> Result<Tagged<ActivityDetails>, ApiError> {
    let id = parse_id(&id, "activity")?;
    let activity = service::patch(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(activity.updated_at), activity))
}

#[utoipa::path(delete, path = "/api/v1/activities/{id}", params(("id" = i32, Path, description = "Activity id")), tag = "activities",
    responses((status = 204, description = "Deleted"), (status = 401), (status = 403), (status = 404)))]
pub async fn delete_activity(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesDelete>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "activity")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}

/// The fields of an activity only a response carries: dropped from a PUT body, so a record read
/// with GET can be PUT back exactly as read.
pub struct ActivityReadOnly;

impl crm_web::ReadOnlyFields for ActivityReadOnly {
    const READ_ONLY: &'static [&'static str] = &["id", "contact_name", "company_name", "deal_title", "owner_name", "needs_review", "created_at", "created_by", "updated_at"];
}
