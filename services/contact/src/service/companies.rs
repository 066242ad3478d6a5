//! Companies: CRUD, the hierarchy (no cycles), basic lookups for other services.

use crm_client_contact::subjects::{COMPANY_CREATED, COMPANY_UPDATED};
use crm_client_contact::{CompanyBasicInfo, CompanyBatch, CompanyDetails};
use crm_events::publish;
use crm_tenant::TenantTx;
use crm_web::{ApiError, Can, ETag, FieldErrors, IfMatch, Page, QueryParams, parse_limit, perm, validate};

use super::{fixed_order, missing_reference, parse_list_cursor, parse_sort, tag_filter};
use crate::AppState;
use super::custom_fields::{self, Entity};
use crate::domain::{CompanyPatch, CompanyWrite, MAX_SEARCH_LEN, NewCompany};
use crate::repo::companies::{self as repo, COMPANY_SORTS, CompanyFilter};
use crate::repo::{self as db, ListCursor};

fn company_cursor(c: &CompanyDetails, sort: (&'static str, bool)) -> ListCursor {
    let (t, ts) = match sort.0 {
        "name" => (Some(c.name.clone()), None),
        "updated_at" => (None, Some(c.updated_at)),
        _ => (None, Some(c.created_at)),
    };
    ListCursor { k: sort.0.to_owned(), desc: sort.1, t, ts, s: None, id: c.id }
}

/// One page of companies matching `params` on top of `filter`, in `tx`.
async fn company_page(state: &AppState, tx: &TenantTx, params: &QueryParams, mut filter: CompanyFilter) -> Result<Page<CompanyDetails>, ApiError> {
    let mut errors = FieldErrors::new();
    if let Some(s) = params.one("search").map(str::trim).filter(|s| !s.is_empty()) {
        errors.check("search", s.chars().count() <= MAX_SEARCH_LEN, "at most 200 characters");
        filter.search = Some(s.to_owned());
    }
    filter.industry = params.one("industry").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).or(filter.industry);
    filter.size_category = params.one("size_category").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if let Some(p) = params.id(&mut errors, "parent_company_id") {
        filter.parent_company_id = Some(p);
    }
    filter.tags = tag_filter(params, &mut errors);
    let defs = crate::repo::custom_fields::definitions(tx, Some(Entity::Company)).await?;
    filter.custom = custom_fields::parse_filters(&mut errors, &defs, params);
    let cf_sort = custom_fields::parse_sort(&defs, params.one("sort"), "c")?;
    errors.into_result()?;
    let limit = parse_limit(params.one("limit"))?;
    if let Some(sort) = cf_sort {
        if filter.search.is_some() {
            db::set_similarity_threshold(tx, 0.3).await?;
        }
        return custom_fields::companies_sorted_by_field(state, tx, &filter, &sort, params, limit).await;
    }
    let sort = parse_sort(params.one("sort"), &COMPANY_SORTS, ("name", false))?;
    let after = parse_list_cursor(&state.cursors, params.one("cursor"), sort.0, sort.1)?;

    if filter.search.is_some() {
        db::set_similarity_threshold(tx, 0.3).await?;
    }
    let rows = repo::list_companies(tx, &filter, sort, after.as_ref(), limit).await?;
    let total = if params.count() { Some(repo::count_companies(tx, &filter).await?) } else { None };
    Ok(Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&company_cursor(last, sort))))
}

/// 422 unless the parent exists; 422 `COMPANY_CYCLE` when it is the company or a descendant.
async fn check_parent(tx: &TenantTx, id: Option<i32>, parent: Option<i32>) -> Result<(), ApiError> {
    let Some(parent) = parent else { return Ok(()) };
    if !repo::company_exists(tx, parent).await? {
        return Err(missing_reference("parent_company_id", "company"));
    }
    if let Some(id) = id {
        repo::lock_company_tree(tx).await?;
        if repo::is_ancestor_or_self(tx, id, parent).await? {
            return Err(ApiError::unprocessable(crm_web::codes::COMPANY_CYCLE, "a company cannot be its own ancestor")
                .with_details(serde_json::json!({"fields": {"parent_company_id": "would create a cycle"}})));
        }
    }
    Ok(())
}

fn validated(input: NewCompany) -> Result<CompanyWrite, ApiError> {
    let mut errors = FieldErrors::new();
    let w = input.validate(&mut errors);
    errors.into_result()?;
    Ok(w)
}

/// `POST /companies`; publishes `company.created`.
pub async fn create(state: &AppState, can: &Can<perm::CompaniesWrite>, input: NewCompany) -> Result<CompanyDetails, ApiError> {
    let mut w = validated(input)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    custom_fields::validate_write(&tx, Entity::Company, &mut w.custom_fields).await?;
    check_parent(&tx, None, w.parent_company_id).await?;
    let company = repo::insert_company(&tx, &w, can.user_id).await?;
    publish(&tx, Some(can.user_id), COMPANY_CREATED, company.basic()).await?;
    tx.commit().await?;
    Ok(company)
}

/// `GET /companies`.
pub async fn list(state: &AppState, can: &Can<perm::CompaniesRead>, params: &QueryParams) -> Result<Page<CompanyDetails>, ApiError> {
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let page = company_page(state, &tx, params, CompanyFilter::default()).await?;
    tx.commit().await?;
    Ok(page)
}

/// `GET /companies/{id}`.
pub async fn get(state: &AppState, can: &Can<perm::CompaniesRead>, id: i32) -> Result<CompanyDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let company = repo::company_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("company"))?;
    tx.commit().await?;
    Ok(company)
}

/// PUT and PATCH: lock, build the full input from the current row, validate, write;
/// publishes `company.updated`.
async fn update(
    state: &AppState,
    can: &Can<perm::CompaniesWrite>,
    id: i32,
    if_match: &IfMatch,
    input: impl FnOnce(&CompanyDetails) -> NewCompany,
) -> Result<CompanyDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::company_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("company"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    let mut w = validated(input(&current))?;
    custom_fields::validate_write(&tx, Entity::Company, &mut w.custom_fields).await?;
    if w.parent_company_id != current.parent_company_id {
        check_parent(&tx, Some(id), w.parent_company_id).await?;
    }
    let company = repo::update_company(&tx, id, &w).await?;
    if company.name != current.name {
        // The company's name is part of its contacts' search words.
        crate::repo::contacts::reword_company_contacts(&tx, id, &company.name).await?;
    }
    // `changes` (old -> new per field) for the audit log: exact here, from the locked row.
    let mut data = serde_json::to_value(company.basic()).map_err(ApiError::internal)?;
    data["changes"] = crm_events::changes(&current, &company, &["updated_at", "created_at", "created_by", "owner_name", "parent_company_name"])
        .map_err(ApiError::internal)?;
    publish(&tx, Some(can.user_id), COMPANY_UPDATED, data).await?;
    tx.commit().await?;
    Ok(company)
}

/// `PUT /companies/{id}`: replaces every field.
pub async fn replace(state: &AppState, can: &Can<perm::CompaniesWrite>, id: i32, if_match: &IfMatch, input: NewCompany) -> Result<CompanyDetails, ApiError> {
    update(state, can, id, if_match, |_| input).await
}

/// `PATCH /companies/{id}`: changes the given fields (400 when there are none).
pub async fn patch(state: &AppState, can: &Can<perm::CompaniesWrite>, id: i32, if_match: &IfMatch, patch: CompanyPatch) -> Result<CompanyDetails, ApiError> {
    if patch.is_empty() {
        return Err(ApiError::validation([("body", "nothing to update")]));
    }
    update(state, can, id, if_match, |current| patch.apply(current)).await
}

/// `DELETE /companies/{id}`: moves the company to the trash (`company.trashed`, issue 16);
/// its contacts and subsidiaries keep the reference. With `?erase=true` (admins) erases it
/// for good (`company.deleted`): subsidiaries lose their parent and contacts their company.
/// See [`super::trash`].
pub async fn delete(state: &AppState, can: &Can<perm::CompaniesDelete>, id: i32, if_match: &IfMatch, erase: bool) -> Result<(), ApiError> {
    if erase { super::trash::erase_company(state, can, id, if_match).await } else { super::trash::trash_company(state, can, id, if_match).await }
}

/// `GET /companies/{id}/basic`.
pub async fn basic(state: &AppState, can: &Can<perm::CompaniesRead>, id: i32) -> Result<CompanyBasicInfo, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = repo::companies_basic(&tx, &[id]).await?;
    tx.commit().await?;
    found.into_iter().next().ok_or_else(|| ApiError::not_found("company"))
}

/// `GET /companies/basic?ids=..`.
pub async fn basic_batch(state: &AppState, can: &Can<perm::CompaniesRead>, params: &QueryParams) -> Result<CompanyBatch, ApiError> {
    fixed_order(params, "id")?;
    let ids = validate::batch_ids("ids", params.one("ids"))?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let data = repo::companies_basic(&tx, &ids).await?;
    tx.commit().await?;
    Ok(CompanyBatch { data })
}

/// `GET /companies/{id}/children`: direct subsidiaries, paginated like the list (a
/// `parent_company_id` parameter is ignored).
pub async fn children(state: &AppState, can: &Can<perm::CompaniesRead>, id: i32, params: &QueryParams) -> Result<Page<CompanyDetails>, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    if !repo::company_exists(&tx, id).await? {
        return Err(ApiError::not_found("company"));
    }
    let params = QueryParams(params.0.iter().filter(|(k, _)| k != "parent_company_id").cloned().collect());
    let filter = CompanyFilter { parent_company_id: Some(id), ..CompanyFilter::default() };
    let page = company_page(state, &tx, &params, filter).await?;
    tx.commit().await?;
    Ok(page)
}
