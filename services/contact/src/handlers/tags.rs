//! `/tags/rename`, `/tags/merge` and `DELETE /tags/{tag}` (issue 16); `GET /tags` is in
//! [`super::contacts`].

use axum::extract::State;
use crm_web::{ApiError, AppJson, AppPath, Can, perm};

use crate::AppState;
use crate::service::tags::{self as service, TagChange, TagMerge, TagRename};

/// Renames a tag on every contact and company (admins and managers). A record that already
/// has `to` keeps it once. 404 when no record has `from`.
#[utoipa::path(post, path = "/api/v1/tags/rename", request_body = TagRename, tag = "tags",
    responses((status = 200, body = TagChange), (status = 400), (status = 403), (status = 404), (status = 415)))]
pub async fn rename_tag(State(state): State<AppState>, can: Can<perm::ContactsWrite>, AppJson(input): AppJson<TagRename>) -> Result<AppJson<TagChange>, ApiError> {
    Ok(AppJson(service::rename(&state, &can, input).await?))
}

/// Merges tags into one on every contact and company (admins and managers). 404 when no
/// record has any of `from`.
#[utoipa::path(post, path = "/api/v1/tags/merge", request_body = TagMerge, tag = "tags",
    responses((status = 200, body = TagChange), (status = 400), (status = 403), (status = 404), (status = 415)))]
pub async fn merge_tags(State(state): State<AppState>, can: Can<perm::ContactsWrite>, AppJson(input): AppJson<TagMerge>) -> Result<AppJson<TagChange>, ApiError> {
    Ok(AppJson(service::merge(&state, &can, input).await?))
}

/// Removes a tag from every contact and company (admins and managers). 404 when no record
/// has it.
#[utoipa::path(delete, path = "/api/v1/tags/{tag}", params(("tag" = String, Path, description = "The tag (case-insensitive)")), tag = "tags",
    responses((status = 200, body = TagChange), (status = 400), (status = 403), (status = 404)))]
pub async fn delete_tag(State(state): State<AppState>, can: Can<perm::ContactsWrite>, AppPath(tag): AppPath<String>) -> Result<AppJson<TagChange>, ApiError> {
    Ok(AppJson(service::delete(&state, &can, &tag).await?))
}
