//! `/companies`.

use axum::extract::State;
use crm_client_contact::{CompanyBasicInfo, CompanyBatch, CompanyDetails};
use crm_web::{ApiError, AppJson, ReplaceJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, Tagged, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse_id;
use crate::AppState;
use crate::domain::{CompanyPatch, NewCompany};
use crate::service::companies as service;

/// Query of `GET /companies` and `GET /companies/{id}/children` (documentation; parsed as
/// [`QueryParams`] so that every bad parameter is named in one 400).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompanyListQuery {
    /// Substring or typo-tolerant match on the name.
    pub search: Option<String>,
    pub industry: Option<String>,
    pub size_category: Option<String>,
    /// Ignored by `/children`.
    pub parent_company_id: Option<i32>,
    /// Repeatable; every tag must match.
    pub tag: Option<Vec<String>>,
    /// name, created_at, updated_at; `-` prefix for descending. Default `name`.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `false` omits `total_count`.
    pub count: Option<bool>,
}

/// Query of `GET /companies/basic`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdsQuery {
    /// Only `id` (the answer is in id order).
    pub sort: Option<String>,
    /// Comma-separated, at most 500.
    pub ids: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/companies", request_body = NewCompany, tag = "companies",
    responses((status = 201, body = CompanyDetails), (status = 400), (status = 403), (status = 415), (status = 422)))]
pub async fn create_company(State(state): State<AppState>, can: Can<perm::CompaniesWrite>, AppJson(input): AppJson<NewCompany>) -> Result<Tagged<CompanyDetails>, ApiError> {
    let row = service::create(&state, &can, input).await?;
    Ok(Tagged::created(ETag::of(row.updated_at), row))
}

#[utoipa::path(get, path = "/api/v1/companies", params(CompanyListQuery), tag = "companies",
    responses((status = 200, body = Page<CompanyDetails>), (status = 400), (status = 403)))]
pub async fn list_companies(State(state): State<AppState>, can: Can<perm::CompaniesRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<Page<CompanyDetails>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/companies/{id}", params(("id" = i32, Path, description = "Company id")), tag = "companies",
    responses((status = 200, body = CompanyDetails), (status = 403), (status = 404)))]
pub async fn get_company(State(state): State<AppState>, can: Can<perm::CompaniesRead>, AppPath(id): AppPath<String>) -> Result<Tagged<CompanyDetails>, ApiError> {
    let id = parse_id(&id, "company")?;
    let row = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(row.updated_at), row))
}

/// Replaces every field of the company.
#[utoipa::path(put, path = "/api/v1/companies/{id}", params(("id" = i32, Path, description = "Company id")), request_body = NewCompany, tag = "companies",
    responses((status = 200, body = CompanyDetails), (status = 400), (status = 403), (status = 404), (status = 415), (status = 422)))]
pub async fn put_company(
    State(state): State<AppState>,
    can: Can<perm::CompaniesWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    ReplaceJson(input, _): ReplaceJson<NewCompany, CompanyReadOnly>,
) -> Result<Tagged<CompanyDetails>, ApiError> {
    let id = parse_id(&id, "company")?;
    let row = service::replace(&state, &can, id, &if_match, input).await?;
    Ok(Tagged::new(ETag::of(row.updated_at), row))
}

/// Changes the given fields; `null` clears.
#[utoipa::path(patch, path = "/api/v1/companies/{id}", params(("id" = i32, Path, description = "Company id")), request_body = CompanyPatch, tag = "companies",
    responses((status = 200, body = CompanyDetails), (status = 400), (status = 403), (status = 404), (status = 415), (status = 422)))]
pub async fn patch_company(
    State(state): State<AppState>,
    can: Can<perm::CompaniesWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(patch): AppJson<CompanyPatch>,
) -> Result<Tagged<CompanyDetails>, ApiError> {
    let id = parse_id(&id, "company")?;
    let row = service::patch(&state, &can, id, &if_match, patch).await?;
    Ok(Tagged::new(ETag::of(row.updated_at), row))
}

/// Moves the company to the trash (`company.trashed`; restorable until the tenant's
/// `trash_retention_days` have passed); its contacts and subsidiaries keep the reference.
/// `?erase=true` (admins only, also for a company already in the trash) erases it for good
/// (`company.deleted`): subsidiaries lose their parent and contacts their company.
#[utoipa::path(delete, path = "/api/v1/companies/{id}", params(("id" = i32, Path, description = "Company id"), super::trash::EraseQuery), tag = "companies",
    responses((status = 204, description = "in the trash (or erased with erase=true)"), (status = 400), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_company(
    State(state): State<AppState>,
    can: Can<perm::CompaniesDelete>,
    AppPath(id): AppPath<String>,
    AppQuery(q): AppQuery<super::trash::EraseQuery>,
    if_match: IfMatch,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "company")?;
    service::delete(&state, &can, id, &if_match, q.erase()).await?;
    Ok(NoContent)
}

#[utoipa::path(get, path = "/api/v1/companies/{id}/basic", params(("id" = i32, Path, description = "Company id")), tag = "companies",
    responses((status = 200, body = CompanyBasicInfo), (status = 403), (status = 404)))]
pub async fn company_basic(State(state): State<AppState>, can: Can<perm::CompaniesRead>, AppPath(id): AppPath<String>) -> Result<AppJson<CompanyBasicInfo>, ApiError> {
    let id = parse_id(&id, "company")?;
    Ok(AppJson(service::basic(&state, &can, id).await?))
}

#[utoipa::path(get, path = "/api/v1/companies/basic", params(IdsQuery), tag = "companies",
    responses((status = 200, body = CompanyBatch), (status = 400), (status = 403)))]
pub async fn companies_basic(State(state): State<AppState>, can: Can<perm::CompaniesRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<CompanyBatch>, ApiError> {
    Ok(AppJson(service::basic_batch(&state, &can, &params).await?))
}

/// Direct subsidiaries, paginated like the list (default sort `name`).
#[utoipa::path(get, path = "/api/v1/companies/{id}/children", params(("id" = i32, Path, description = "Company id"), CompanyListQuery), tag = "companies",
    responses((status = 200, body = Page<CompanyDetails>), (status = 400), (status = 403), (status = 404)))]
pub async fn company_children(
    State(state): State<AppState>,
    can: Can<perm::CompaniesRead>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<CompanyDetails>>, ApiError> {
    let id = parse_id(&id, "company")?;
    Ok(AppJson(service::children(&state, &can, id, &params).await?))
}

/// The fields of a company only a response carries: dropped from a PUT body, so a record read
/// with GET can be PUT back exactly as read.
pub struct CompanyReadOnly;

impl crm_web::ReadOnlyFields for CompanyReadOnly {
    const READ_ONLY: &'static [&'static str] = &["id", "created_at", "created_by", "updated_at"];
}
