//! `/contacts/duplicates`, `/companies/duplicates`, `/contacts/{id}/merge`,
//! `/companies/{id}/merge` (issue 16). The rules are in [`crate::service::merge`].

use axum::extract::State;
use crm_client_contact::{CompanyDetails, ContactDetails};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, ETag, IfMatch, Page, QueryParams, Tagged, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse_id;
use crate::AppState;
use crate::service::merge::{self as service, CompanyDuplicate, ContactDuplicate, MergeInput};

/// Query of `GET /contacts/duplicates` (parsed as [`QueryParams`]: every bad parameter is
/// named in one 400).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactDuplicatesQuery {
    /// Only the candidates of this contact (404 when it does not exist or is in the trash).
    pub contact_id: Option<i32>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Query of `GET /companies/duplicates`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompanyDuplicatesQuery {
    /// Only the candidates of this company (404 when it does not exist or is in the trash).
    pub company_id: Option<i32>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Candidate duplicate pairs of live contacts (same mailbox, same phone, or names at least
/// 0.6 similar), with a score 0..1 and the reasons; in (contact id, duplicate id) order.
#[utoipa::path(get, path = "/api/v1/contacts/duplicates", params(ContactDuplicatesQuery), tag = "contacts",
    responses((status = 200, body = Page<ContactDuplicate>), (status = 400), (status = 403), (status = 404)))]
pub async fn contact_duplicates(
    State(state): State<AppState>,
    can: Can<perm::ContactsRead>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<ContactDuplicate>>, ApiError> {
    Ok(AppJson(service::contact_duplicates(&state, &can, &params).await?))
}

/// Candidate duplicate pairs of live companies (same domain / website host, or names at
/// least 0.6 similar), with a score 0..1 and the reasons.
#[utoipa::path(get, path = "/api/v1/companies/duplicates", params(CompanyDuplicatesQuery), tag = "companies",
    responses((status = 200, body = Page<CompanyDuplicate>), (status = 400), (status = 403), (status = 404)))]
pub async fn company_duplicates(
    State(state): State<AppState>,
    can: Can<perm::CompaniesRead>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<CompanyDuplicate>>, ApiError> {
    Ok(AppJson(service::company_duplicates(&state, &can, &params).await?))
}

/// Merges the contacts `from` into contact `{id}` (the survivor) in one transaction: the
/// survivor takes the chosen values and the union of the tags; the others go to the trash
/// (`merged_into` = survivor); `contact.merged` moves their deals, activities, tasks, emails,
/// notes and files to the survivor in the other services. `If-Match` applies to the survivor.
/// 400: bad `from`/`fields`; 404: an unknown or trashed contact; 409: one already merged.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/merge", params(("id" = i32, Path, description = "Contact id of the survivor")),
    request_body = MergeInput, tag = "contacts",
    responses((status = 200, body = ContactDetails), (status = 400), (status = 403), (status = 404), (status = 409), (status = 412), (status = 415), (status = 422)))]
pub async fn merge_contacts(
    State(state): State<AppState>,
    can: Can<perm::ContactsDelete>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(input): AppJson<MergeInput>,
) -> Result<Tagged<ContactDetails>, ApiError> {
    let id = parse_id(&id, "contact")?;
    let row = service::merge_contacts(&state, &can, id, &if_match, input).await?;
    Ok(Tagged::new(ETag::of(row.updated_at), row))
}

/// Merges the companies `from` into company `{id}`: like the contacts' merge; the merged
/// companies' contacts and subsidiaries move to the survivor in the same transaction, their
/// deals and activities through `company.merged`.
#[utoipa::path(post, path = "/api/v1/companies/{id}/merge", params(("id" = i32, Path, description = "Company id of the survivor")),
    request_body = MergeInput, tag = "companies",
    responses((status = 200, body = CompanyDetails), (status = 400), (status = 403), (status = 404), (status = 409), (status = 412), (status = 415), (status = 422)))]
pub async fn merge_companies(
    State(state): State<AppState>,
    can: Can<perm::CompaniesDelete>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(input): AppJson<MergeInput>,
) -> Result<Tagged<CompanyDetails>, ApiError> {
    let id = parse_id(&id, "company")?;
    let row = service::merge_companies(&state, &can, id, &if_match, input).await?;
    Ok(Tagged::new(ETag::of(row.updated_at), row))
}
