//! `GET /contacts/{id}/timeline`, `GET /companies/{id}/timeline` and `GET /reports/activities`.

use axum::extract::State;
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, Page, QueryParams, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::repo::timeline::TimelineItem;
use crate::service::reports::{self as service, ActivityReport};
use crate::service::parse_id;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TimelineParams {
    /// Comma-separated or repeated: email, call, meeting, note, task, reminder, follow_up.
    #[serde(rename = "type")]
    pub r#type: Option<String>,
    /// `-occurred_at` (newest first: the default and only order); anything else is refused.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Activities, emails (with opens and clicks), tasks and notes of a contact, newest first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/timeline", params(("id" = i32, Path, description = "Contact id"), TimelineParams), tag = "timeline",
    responses((status = 200, description = "A page of the timeline", body = Page<TimelineItem>), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn contact_timeline(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesRead>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<TimelineItem>>, ApiError> {
    let contact_id = parse_id(&id, "contact")?;
    Ok(AppJson(service::timeline(&state, &can, contact_id, &params).await?))
}

/// Activities and notes of a company, newest first (emails and tasks have no company; an
/// email activity is shown to whoever may see that email).
#[utoipa::path(get, path = "/api/v1/companies/{id}/timeline", params(("id" = i32, Path, description = "Company id"), TimelineParams), tag = "timeline",
    responses((status = 200, description = "A page of the timeline", body = Page<TimelineItem>), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn company_timeline(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesRead>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<TimelineItem>>, ApiError> {
    let company_id = parse_id(&id, "company")?;
    Ok(AppJson(service::company_timeline(&state, &can, company_id, &params).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReportParams {
    /// Start (inclusive, RFC 3339); default 30 days before `to`.
    pub from: Option<String>,
    /// End (exclusive, RFC 3339); default now.
    pub to: Option<String>,
    /// Only this owner's activities and tasks (sales reps: always their own).
    pub owner_id: Option<i32>,
}

/// Interaction metrics over a period (sales reps: their own).
#[utoipa::path(get, path = "/api/v1/reports/activities", params(ReportParams), tag = "reports",
    responses((status = 200, description = "The report", body = ActivityReport), (status = 400), (status = 401), (status = 403)))]
pub async fn activity_report(
    State(state): State<AppState>,
    can: Can<perm::ReportsRead>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<ActivityReport>, ApiError> {
    Ok(AppJson(service::activities(&state, &can, &params).await?))
}
