//! `/trash` (issue 16): the trash of contacts and companies (deals: deal-service's
//! `/trash/deals`), restore, erase, and the purge run on demand. See
//! [`crate::service::trash`] for the rules.

use axum::extract::State;
use crm_client_contact::{CompanyDetails, ContactDetails};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, Tagged, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse_id;
use crate::AppState;
use crate::service::trash::{self as service, PurgeReport, TrashItem};

/// `?erase=` of `DELETE /contacts/{id}` and `/companies/{id}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EraseQuery {
    /// `true` (admins only): erase for good now, also a record already in the trash
    /// (publishes `*.deleted`); default `false`: move it to the trash.
    pub erase: Option<bool>,
}

impl EraseQuery {
    /// Whether the caller asked to erase.
    pub fn erase(&self) -> bool {
        self.erase.unwrap_or(false)
    }
}

/// Query of `GET /trash`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrashQuery {
    /// `contact` or `company`; absent: both.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only `-deleted_at` (newest deletion first).
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The trash of contacts and companies, newest deletion first, with who deleted each, when,
/// and when the purge erases it. Admins and managers see everything; sales reps the contacts
/// they deleted, own or created (no companies: they cannot delete companies). Deals are in
/// deal-service's `GET /trash/deals`.
#[utoipa::path(get, path = "/api/v1/trash", params(TrashQuery), tag = "trash",
    responses((status = 200, body = Page<TrashItem>), (status = 400), (status = 403)))]
pub async fn list_trash(State(state): State<AppState>, can: Can<perm::ContactsDelete>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<Page<TrashItem>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

/// Restores a contact from the trash (with its references, which were kept); publishes
/// `contact.restored`. 404 when it is not in the trash; 409 `EMAIL_TAKEN` (field `email`)
/// when a live contact has its email now.
#[utoipa::path(post, path = "/api/v1/trash/contacts/{id}/restore", params(("id" = i32, Path, description = "Contact id")), tag = "trash",
    responses((status = 200, body = ContactDetails), (status = 403), (status = 404), (status = 409)))]
pub async fn restore_contact(State(state): State<AppState>, can: Can<perm::ContactsDelete>, AppPath(id): AppPath<String>) -> Result<Tagged<ContactDetails>, ApiError> {
    let contact = service::restore_contact(&state, &can, parse_id(&id, "contact")?).await?;
    Ok(Tagged::new(ETag::of(contact.updated_at), contact))
}

/// Restores a company from the trash; publishes `company.restored`. 404 when it is not in
/// the trash.
#[utoipa::path(post, path = "/api/v1/trash/companies/{id}/restore", params(("id" = i32, Path, description = "Company id")), tag = "trash",
    responses((status = 200, body = CompanyDetails), (status = 403), (status = 404)))]
pub async fn restore_company(State(state): State<AppState>, can: Can<perm::CompaniesDelete>, AppPath(id): AppPath<String>) -> Result<Tagged<CompanyDetails>, ApiError> {
    let company = service::restore_company(&state, &can, parse_id(&id, "company")?).await?;
    Ok(Tagged::new(ETag::of(company.updated_at), company))
}

/// Erases a contact for good (admins), in the trash or not: the same as
/// `DELETE /contacts/{id}?erase=true`; publishes `contact.deleted`.
#[utoipa::path(delete, path = "/api/v1/trash/contacts/{id}", params(("id" = i32, Path, description = "Contact id")), tag = "trash",
    responses((status = 204, description = "erased"), (status = 403), (status = 404)))]
pub async fn erase_contact(State(state): State<AppState>, can: Can<perm::ContactsDelete>, AppPath(id): AppPath<String>, if_match: IfMatch) -> Result<NoContent, ApiError> {
    service::erase_contact(&state, &can, parse_id(&id, "contact")?, &if_match).await?;
    Ok(NoContent)
}

/// Erases a company for good (admins), in the trash or not: the same as
/// `DELETE /companies/{id}?erase=true`; publishes `company.deleted`.
#[utoipa::path(delete, path = "/api/v1/trash/companies/{id}", params(("id" = i32, Path, description = "Company id")), tag = "trash",
    responses((status = 204, description = "erased"), (status = 403), (status = 404)))]
pub async fn erase_company(State(state): State<AppState>, can: Can<perm::CompaniesDelete>, AppPath(id): AppPath<String>, if_match: IfMatch) -> Result<NoContent, ApiError> {
    service::erase_company(&state, &can, parse_id(&id, "company")?, &if_match).await?;
    Ok(NoContent)
}

/// Runs the purge of the caller's tenant now (admins): erases the contacts and companies in
/// the trash for `trash_retention_days` or more (one `*.deleted` each) and answers how many.
/// The periodic purge does the same for every tenant (`TRASH_PURGE_POLL_SECS`).
#[utoipa::path(post, path = "/api/v1/trash/purge", tag = "trash",
    responses((status = 200, body = PurgeReport), (status = 403)))]
pub async fn purge_trash(State(state): State<AppState>, can: Can<perm::ContactsDelete>) -> Result<AppJson<PurgeReport>, ApiError> {
    Ok(AppJson(service::purge_now(&state, &can).await?))
}
