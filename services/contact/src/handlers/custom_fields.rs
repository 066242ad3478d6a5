//! `/custom-fields`: the tenant's typed custom field definitions (issue 16). Every member
//! reads them (`tenant: read`), admins manage them (`tenant: write`).

use axum::extract::State;
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, QueryParams, Tagged, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse_id;
use crate::AppState;
use crate::service::custom_fields::{self as service, CustomFieldDefinition, CustomFieldList, CustomFieldPatch, NewCustomField};

/// Query of `GET /custom-fields`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomFieldListQuery {
    /// contact or company (default: both).
    pub entity: Option<String>,
}

/// The definitions in entity, position, then key order. They type the `custom_fields`
/// object of contacts and companies (see `NewContact.custom_fields`).
#[utoipa::path(get, path = "/api/v1/custom-fields", params(CustomFieldListQuery), tag = "custom-fields",
    responses((status = 200, body = CustomFieldList), (status = 400), (status = 403)))]
pub async fn list_custom_fields(
    State(state): State<AppState>,
    can: Can<perm::TenantRead>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<CustomFieldList>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

/// Defines a custom field (admins). 409 when the entity already has the key.
#[utoipa::path(post, path = "/api/v1/custom-fields", request_body = NewCustomField, tag = "custom-fields",
    responses((status = 201, body = CustomFieldDefinition), (status = 400), (status = 403), (status = 409), (status = 415)))]
pub async fn create_custom_field(
    State(state): State<AppState>,
    can: Can<perm::TenantWrite>,
    AppJson(input): AppJson<NewCustomField>,
) -> Result<Tagged<CustomFieldDefinition>, ApiError> {
    let def = service::create(&state, &can, input).await?;
    Ok(Tagged::created(ETag::of(def.updated_at), def))
}

#[utoipa::path(get, path = "/api/v1/custom-fields/{id}", params(("id" = i32, Path, description = "Custom field id")), tag = "custom-fields",
    responses((status = 200, body = CustomFieldDefinition), (status = 403), (status = 404)))]
pub async fn get_custom_field(State(state): State<AppState>, can: Can<perm::TenantRead>, AppPath(id): AppPath<String>) -> Result<Tagged<CustomFieldDefinition>, ApiError> {
    let id = parse_id(&id, "custom field")?;
    let def = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(def.updated_at), def))
}

/// Changes label, options, required or position (admins; entity, key and type are fixed).
#[utoipa::path(patch, path = "/api/v1/custom-fields/{id}", params(("id" = i32, Path, description = "Custom field id")), request_body = CustomFieldPatch, tag = "custom-fields",
    responses((status = 200, body = CustomFieldDefinition), (status = 400), (status = 403), (status = 404), (status = 412), (status = 415)))]
pub async fn patch_custom_field(
    State(state): State<AppState>,
    can: Can<perm::TenantWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(patch): AppJson<CustomFieldPatch>,
) -> Result<Tagged<CustomFieldDefinition>, ApiError> {
    let id = parse_id(&id, "custom field")?;
    let def = service::patch(&state, &can, id, &if_match, patch).await?;
    Ok(Tagged::new(ETag::of(def.updated_at), def))
}

/// Deletes the definition (admins); stored values stay in the records, untyped.
#[utoipa::path(delete, path = "/api/v1/custom-fields/{id}", params(("id" = i32, Path, description = "Custom field id")), tag = "custom-fields",
    responses((status = 204, description = "deleted"), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_custom_field(State(state): State<AppState>, can: Can<perm::TenantWrite>, AppPath(id): AppPath<String>, if_match: IfMatch) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "custom field")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}
