//! `/sequences`: email sequences, and the enrollments of contacts in them.

use axum::extract::State;
use axum::http::StatusCode;
use crm_client_communication::{Enrollment, Sequence};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, ReplaceJson, Tagged, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::automation::{NewEnrollment, NewSequence};
use crate::service::{parse_id, sequences as service};

/// Query parameters of the lists (all optional).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SequenceListParams {
    /// `name` (the default and only order).
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EnrollmentListParams {
    /// active, completed, stopped
    pub status: Option<String>,
    /// `-created_at` (the default and only order: newest first).
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

/// Creates a sequence: `{name, steps: [{template_id, delay_hours}]}` (admins, managers).
#[utoipa::path(post, path = "/api/v1/sequences", request_body = NewSequence, tag = "sequences",
    responses((status = 201, description = "Created", body = Sequence), (status = 400), (status = 401), (status = 403), (status = 409), (status = 422)))]
pub async fn create_sequence(State(state): State<AppState>, can: Can<perm::AutomationWrite>, AppJson(body): AppJson<NewSequence>) -> Result<Tagged<Sequence>, ApiError> {
    let s = service::create(&state, &can, body).await?;
    Ok(Tagged::created(ETag::of(s.updated_at), s))
}

#[utoipa::path(get, path = "/api/v1/sequences", params(SequenceListParams), tag = "sequences",
    responses((status = 200, description = "A page of sequences, by name", body = Page<Sequence>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_sequences(State(state): State<AppState>, can: Can<perm::AutomationRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<Page<Sequence>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/sequences/{id}", params(("id" = i32, Path, description = "Sequence id")), tag = "sequences",
    responses((status = 200, description = "The sequence", body = Sequence), (status = 401), (status = 403), (status = 404)))]
pub async fn get_sequence(State(state): State<AppState>, can: Can<perm::AutomationRead>, AppPath(id): AppPath<String>) -> Result<Tagged<Sequence>, ApiError> {
    let id = parse_id(&id, "sequence")?;
    let s = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(s.updated_at), s))
}

/// Replaces a sequence (running enrollments keep the steps they were scheduled with).
#[utoipa::path(put, path = "/api/v1/sequences/{id}", params(("id" = i32, Path, description = "Sequence id")), request_body = NewSequence, tag = "sequences",
    responses((status = 200, description = "Replaced", body = Sequence), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409), (status = 412), (status = 422)))]
pub async fn replace_sequence(
    State(state): State<AppState>,
    can: Can<perm::AutomationWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    ReplaceJson(body, _): ReplaceJson<NewSequence, SequenceReadOnly>,
) -> Result<Tagged<Sequence>, ApiError> {
    let id = parse_id(&id, "sequence")?;
    let s = service::replace(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(s.updated_at), s))
}

/// Deletes a sequence with its enrollments (their unsent steps are never sent).
#[utoipa::path(delete, path = "/api/v1/sequences/{id}", params(("id" = i32, Path, description = "Sequence id")), tag = "sequences",
    responses((status = 204, description = "Deleted"), (status = 401), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_sequence(State(state): State<AppState>, can: Can<perm::AutomationDelete>, AppPath(id): AppPath<String>, if_match: IfMatch) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "sequence")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}

/// Enrolls a contact: every step is scheduled at once (the first `delay_hours` after now).
/// A sales rep enrolls contacts it owns.
#[utoipa::path(post, path = "/api/v1/sequences/{id}/enrollments", params(("id" = i32, Path, description = "Sequence id")), request_body = NewEnrollment, tag = "sequences",
    responses((status = 201, description = "Enrolled, with the scheduled steps", body = Enrollment), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422), (status = 503)))]
pub async fn enroll_contact(
    State(state): State<AppState>,
    can: Can<perm::EmailsWrite>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<NewEnrollment>,
) -> Result<(StatusCode, AppJson<Enrollment>), ApiError> {
    let id = parse_id(&id, "sequence")?;
    Ok((StatusCode::CREATED, AppJson(service::enroll(&state, &can, id, body).await?)))
}

/// The enrollments of a sequence with the status of every step (scheduled, sent, failed,
/// skipped, cancelled).
#[utoipa::path(get, path = "/api/v1/sequences/{id}/enrollments", params(("id" = i32, Path, description = "Sequence id"), EnrollmentListParams), tag = "sequences",
    responses((status = 200, description = "A page of enrollments, newest first", body = Page<Enrollment>), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn list_enrollments(
    State(state): State<AppState>,
    can: Can<perm::AutomationRead>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<Enrollment>>, ApiError> {
    let id = parse_id(&id, "sequence")?;
    Ok(AppJson(service::enrollments(&state, &can, id, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/sequences/{id}/enrollments/{enrollment_id}",
    params(("id" = i32, Path, description = "Sequence id"), ("enrollment_id" = i32, Path, description = "Enrollment id")), tag = "sequences",
    responses((status = 200, description = "The enrollment with its steps", body = Enrollment), (status = 401), (status = 403), (status = 404)))]
pub async fn get_enrollment(State(state): State<AppState>, can: Can<perm::AutomationRead>, AppPath((id, enrollment_id)): AppPath<(String, String)>) -> Result<AppJson<Enrollment>, ApiError> {
    let id = parse_id(&id, "sequence")?;
    let enrollment_id = parse_id(&enrollment_id, "enrollment")?;
    Ok(AppJson(service::enrollment(&state, &can, id, enrollment_id).await?))
}

/// Unenrolls: the enrollment stays (`stopped`, reason `unenrolled`) and its unsent steps
/// are cancelled.
#[utoipa::path(delete, path = "/api/v1/sequences/{id}/enrollments/{enrollment_id}",
    params(("id" = i32, Path, description = "Sequence id"), ("enrollment_id" = i32, Path, description = "Enrollment id")), tag = "sequences",
    responses((status = 204, description = "Unenrolled"), (status = 401), (status = 403), (status = 404)))]
pub async fn unenroll_contact(State(state): State<AppState>, can: Can<perm::EmailsWrite>, AppPath((id, enrollment_id)): AppPath<(String, String)>) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "sequence")?;
    let enrollment_id = parse_id(&enrollment_id, "enrollment")?;
    service::unenroll(&state, &can, id, enrollment_id).await?;
    Ok(NoContent)
}

/// The fields of a sequence only a response carries (a GET body can be PUT back).
pub struct SequenceReadOnly;

impl crm_web::ReadOnlyFields for SequenceReadOnly {
    const READ_ONLY: &'static [&'static str] = &["id", "active_enrollments", "created_at", "created_by", "updated_at"];
}
