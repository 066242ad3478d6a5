//! `/notes` (issue 16): write, list, read, patch, delete. Permissions are those of
//! activities (see `crate::service::notes`).

use axum::extract::State;
use crm_client_communication::{NewNote, Note, NotePatch};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, Tagged, perm};
use utoipa::IntoParams;

use crate::AppState;
use crate::service::{notes as service, parse_id};

/// Query parameters of `GET /notes` (all optional).
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct NoteListParams {
    /// Notes about this contact.
    pub contact_id: Option<i32>,
    /// Notes about this company.
    pub company_id: Option<i32>,
    /// Notes about this deal.
    pub deal_id: Option<i32>,
    /// Notes written by this user.
    pub author_id: Option<i32>,
    /// `created_at` (default `-created_at`, newest first) or `updated_at`; `-` for descending.
    pub sort: Option<String>,
    /// 1-100 (default 20).
    pub limit: Option<i64>,
    /// `pagination.next_cursor` of the previous page (same sort).
    pub cursor: Option<String>,
    /// `false` skips `pagination.total_count`.
    pub count: Option<bool>,
}

/// Writes a note (`note.created`) as the caller; the linked records must exist.
#[utoipa::path(post, path = "/api/v1/notes", request_body = NewNote, tag = "notes",
    responses((status = 201, description = "Written", body = Note), (status = 400), (status = 401), (status = 403), (status = 422), (status = 503)))]
pub async fn create_note(State(state): State<AppState>, can: Can<perm::ActivitiesWrite>, AppJson(body): AppJson<NewNote>) -> Result<Tagged<Note>, ApiError> {
    let note = service::create(&state, &can, body).await?;
    Ok(Tagged::created(ETag::of(note.updated_at), note))
}

/// Notes with filters, newest first by default, with the author's name and the names of
/// what they link.
#[utoipa::path(get, path = "/api/v1/notes", params(NoteListParams), tag = "notes",
    responses((status = 200, description = "A page of notes", body = Page<Note>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_notes(State(state): State<AppState>, can: Can<perm::ActivitiesRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<Page<Note>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

/// One note (`ETag` for a later `If-Match`).
#[utoipa::path(get, path = "/api/v1/notes/{id}", params(("id" = i32, Path, description = "Note id")), tag = "notes",
    responses((status = 200, description = "The note", body = Note), (status = 401), (status = 403), (status = 404)))]
pub async fn get_note(State(state): State<AppState>, can: Can<perm::ActivitiesRead>, AppPath(id): AppPath<String>) -> Result<Tagged<Note>, ApiError> {
    let id = parse_id(&id, "note")?;
    let note = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(note.updated_at), note))
}

/// Changes the body or links of a note (`note.updated` with the changes); sales reps only
/// their own notes.
#[utoipa::path(patch, path = "/api/v1/notes/{id}", params(("id" = i32, Path, description = "Note id")), request_body = NotePatch, tag = "notes",
    responses((status = 200, description = "Changed", body = Note), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409), (status = 412), (status = 422), (status = 503)))]
pub async fn patch_note(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(body): AppJson<NotePatch>,
) -> Result<Tagged<Note>, ApiError> {
    let id = parse_id(&id, "note")?;
    let note = service::patch(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(note.updated_at), note))
}

/// Deletes a note (`note.deleted`); sales reps only their own notes.
#[utoipa::path(delete, path = "/api/v1/notes/{id}", params(("id" = i32, Path, description = "Note id")), tag = "notes",
    responses((status = 204, description = "Deleted"), (status = 401), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_note(State(state): State<AppState>, can: Can<perm::ActivitiesDelete>, AppPath(id): AppPath<String>, if_match: IfMatch) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "note")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}
