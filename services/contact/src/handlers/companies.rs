//! `/companies`: CRUD, hierarchy, basic lookups.

use axum::extract::State;
use crm_client_contact::{CompanyBasicInfo, CompanyBatch, CompanyDetails};
use crm_web::{Action, ApiError, AppJson, AppPath, AppQuery, AuthUser, Created, FieldErrors, NoContent, Page, Resource, parse_limit};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Params, missing_reference, parse_id, parse_list_cursor, parse_sort, publish};
use crate::AppState;
use crate::domain::{CompanyInput, CompanyPatch, CompanyWrite, MAX_SEARCH_LEN};
use crm_web::validate;
use crate::repo::{self, COMPANY_SORTS, CompanyFilter, ListCursor};

/// Query of `GET /companies` (documentation; parsed by hand for field errors).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompanyListQuery {
    /// Substring or typo-tolerant match on the name.
    pub search: Option<String>,
    pub industry: Option<String>,
    pub size_category: Option<String>,
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdsQuery {
    /// Comma-separated, at most 500.
    pub ids: Option<String>,
}

fn company_cursor(c: &CompanyDetails, sort: (&'static str, bool)) -> ListCursor {
    let (t, ts) = match sort.0 {
        "name" => (Some(c.name.clone()), None),
        "updated_at" => (None, Some(c.updated_at)),
        _ => (None, Some(c.created_at)),
    };
    ListCursor { k: sort.0.to_owned(), desc: sort.1, t, ts, s: None, id: c.id }
}

async fn company_page(state: &AppState, user: &AuthUser, params: &Params, mut filter: CompanyFilter) -> Result<Page<CompanyDetails>, ApiError> {
    let mut errors = FieldErrors::new();
    if let Some(s) = params.one("search").map(str::trim).filter(|s| !s.is_empty()) {
        errors.check("search", s.chars().count() <= MAX_SEARCH_LEN, "at most 200 characters");
        filter.search = Some(s.to_lowercase());
    }
    filter.industry = params.one("industry").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).or(filter.industry);
    filter.size_category = params.one("size_category").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if let Some(p) = params.id(&mut errors, "parent_company_id") {
        filter.parent_company_id = Some(p);
    }
    filter.tags = super::tags(&params, &mut errors);
    errors.into_result()?;
    let limit = parse_limit(params.one("limit"))?;
    let sort = parse_sort(params.one("sort"), &COMPANY_SORTS, ("name", false))?;
    let after = parse_list_cursor(&state.cursors, params.one("cursor"), sort.0, sort.1)?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    if filter.search.is_some() {
        repo::set_similarity_threshold(&tx, 0.3).await?;
    }
    let rows = repo::list_companies(&tx, &filter, sort, after.as_ref(), limit).await?;
    let total = if params.count() { Some(repo::count_companies(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&company_cursor(last, sort))))
}

/// 422 unless the parent exists; 422 `COMPANY_CYCLE` when it is the company or a descendant.
async fn check_parent(tx: &repo::Tx<'_>, id: Option<i32>, parent: Option<i32>) -> Result<(), ApiError> {
    let Some(parent) = parent else { return Ok(()) };
    if !repo::company_exists(tx, parent).await? {
        return Err(missing_reference("parent_company_id", "company"));
    }
    if let Some(id) = id {
        repo::lock_company_tree(tx).await?;
        if repo::is_ancestor_or_self(tx, id, parent).await? {
            return Err(ApiError::unprocessable("COMPANY_CYCLE", "a company cannot be its own ancestor")
                .with_details(serde_json::json!({"fields": {"parent_company_id": "would create a cycle"}})));
        }
    }
    Ok(())
}

fn validated(input: CompanyInput) -> Result<CompanyWrite, ApiError> {
    let mut errors = FieldErrors::new();
    let w = input.validate(&mut errors);
    errors.into_result()?;
    Ok(w)
}

#[utoipa::path(post, path = "/api/v1/companies", request_body = CompanyInput, tag = "companies",
    responses((status = 201, body = CompanyDetails), (status = 400), (status = 403), (status = 422)))]
pub async fn create_company(State(state): State<AppState>, user: AuthUser, AppJson(input): AppJson<CompanyInput>) -> Result<Created<CompanyDetails>, ApiError> {
    user.require(Resource::Companies, Action::Write)?;
    let w = validated(input)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    check_parent(&tx, None, w.parent_company_id).await?;
    let company = repo::insert_company(&tx, &w, user.user_id).await?;
    publish(&tx, "company.created", &user, company.basic()).await?;
    tx.commit().await?;
    Ok(Created(company))
}

#[utoipa::path(get, path = "/api/v1/companies", params(CompanyListQuery), tag = "companies",
    responses((status = 200, body = Page<CompanyDetails>), (status = 400)))]
pub async fn list_companies(State(state): State<AppState>, user: AuthUser, AppQuery(params): AppQuery<Vec<(String, String)>>) -> Result<AppJson<Page<CompanyDetails>>, ApiError> {
    user.require(Resource::Companies, Action::Read)?;
    Ok(AppJson(company_page(&state, &user, &Params(params), CompanyFilter::default()).await?))
}

#[utoipa::path(get, path = "/api/v1/companies/{id}", tag = "companies",
    responses((status = 200, body = CompanyDetails), (status = 404)))]
pub async fn get_company(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<AppJson<CompanyDetails>, ApiError> {
    user.require(Resource::Companies, Action::Read)?;
    let id = parse_id(&id, "company")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let company = repo::company_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("company"))?;
    tx.commit().await?;
    Ok(AppJson(company))
}

/// PUT and PATCH: lock, build the full input from the current row, validate, write.
async fn update(state: &AppState, user: &AuthUser, raw_id: &str, input: impl FnOnce(&CompanyDetails) -> CompanyInput) -> Result<CompanyDetails, ApiError> {
    user.require(Resource::Companies, Action::Write)?;
    let id = parse_id(raw_id, "company")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let current = repo::company_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("company"))?;
    let w = validated(input(&current))?;
    if w.parent_company_id != current.parent_company_id {
        check_parent(&tx, Some(id), w.parent_company_id).await?;
    }
    let company = repo::update_company(&tx, id, &w).await?;
    publish(&tx, "company.updated", user, company.basic()).await?;
    tx.commit().await?;
    Ok(company)
}

#[utoipa::path(put, path = "/api/v1/companies/{id}", request_body = CompanyInput, tag = "companies",
    responses((status = 200, body = CompanyDetails), (status = 400), (status = 403), (status = 404), (status = 422)))]
pub async fn put_company(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>, AppJson(input): AppJson<CompanyInput>) -> Result<AppJson<CompanyDetails>, ApiError> {
    Ok(AppJson(update(&state, &user, &id, |_| input).await?))
}

#[utoipa::path(patch, path = "/api/v1/companies/{id}", request_body = CompanyPatch, tag = "companies",
    responses((status = 200, body = CompanyDetails), (status = 400), (status = 403), (status = 404), (status = 422)))]
pub async fn patch_company(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>, AppJson(patch): AppJson<CompanyPatch>) -> Result<AppJson<CompanyDetails>, ApiError> {
    if patch.is_empty() {
        user.require(Resource::Companies, Action::Write)?;
        return Err(ApiError::validation([("body", "nothing to update")]));
    }
    Ok(AppJson(update(&state, &user, &id, |current| patch.apply(current)).await?))
}

/// Deletes the company; its subsidiaries lose their parent and its contacts their company.
#[utoipa::path(delete, path = "/api/v1/companies/{id}", tag = "companies",
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_company(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<NoContent, ApiError> {
    user.require(Resource::Companies, Action::Delete)?;
    let id = parse_id(&id, "company")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let company = repo::company_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("company"))?;
    repo::delete_company(&tx, id).await?;
    publish(&tx, "company.deleted", &user, company.basic()).await?;
    tx.commit().await?;
    Ok(NoContent)
}

#[utoipa::path(get, path = "/api/v1/companies/{id}/basic", tag = "companies",
    responses((status = 200, body = CompanyBasicInfo), (status = 404)))]
pub async fn company_basic(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<AppJson<CompanyBasicInfo>, ApiError> {
    user.require(Resource::Companies, Action::Read)?;
    let id = parse_id(&id, "company")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let found = repo::companies_basic(&tx, &[id]).await?;
    tx.commit().await?;
    Ok(AppJson(found.into_iter().next().ok_or_else(|| ApiError::not_found("company"))?))
}

#[utoipa::path(get, path = "/api/v1/companies/basic", params(IdsQuery), tag = "companies",
    responses((status = 200, body = CompanyBatch), (status = 400)))]
pub async fn companies_basic(State(state): State<AppState>, user: AuthUser, AppQuery(q): AppQuery<Vec<(String, String)>>) -> Result<AppJson<CompanyBatch>, ApiError> {
    user.require(Resource::Companies, Action::Read)?;
    let ids = validate::batch_ids("ids", Params(q).one("ids"))?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let data = repo::companies_basic(&tx, &ids).await?;
    tx.commit().await?;
    Ok(AppJson(CompanyBatch { data }))
}

/// Direct subsidiaries, paginated like the list (default sort `name`).
#[utoipa::path(get, path = "/api/v1/companies/{id}/children", params(CompanyListQuery), tag = "companies",
    responses((status = 200, body = Page<CompanyDetails>), (status = 404)))]
pub async fn company_children(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<Vec<(String, String)>>,
) -> Result<AppJson<Page<CompanyDetails>>, ApiError> {
    user.require(Resource::Companies, Action::Read)?;
    let id = parse_id(&id, "company")?;
    {
        let mut conn = state.db.connect().await?;
        let tx = conn.tenant(&user.tenant_id).await?;
        if !repo::company_exists(&tx, id).await? {
            return Err(ApiError::not_found("company"));
        }
        tx.commit().await?;
    }
    let params: Vec<(String, String)> = params.into_iter().filter(|(k, _)| k != "parent_company_id").collect();
    let filter = CompanyFilter { parent_company_id: Some(id), ..CompanyFilter::default() };
    Ok(AppJson(company_page(&state, &user, &Params(params), filter).await?))
}
