//! `/contacts` and `/tags`.

use axum::extract::State;
use crm_client_contact::{ContactBasicInfo, ContactDetails, ContactLookup};
use crm_web::{ApiError, AppJson, ReplaceJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, Tagged, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse_id;
use crate::AppState;
use crate::domain::{ContactPatch, ContactStats, NewContact, StatusHistoryEntry, TagList};
use crate::service::contacts as service;

/// Query of `GET /contacts` (documentation; parsed as [`QueryParams`] so that every bad
/// parameter is named in one 400).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactListQuery {
    /// Typo-tolerant search over first/last/full name, email and company name, ranked by
    /// relevance (no `sort` with it).
    pub search: Option<String>,
    /// lead, prospect, customer, churned, archived
    pub status: Option<String>,
    pub owner_id: Option<i32>,
    pub company_id: Option<i32>,
    /// RFC 3339, inclusive.
    pub created_after: Option<String>,
    /// RFC 3339, exclusive.
    pub created_before: Option<String>,
    /// Repeatable; every tag must match.
    pub tag: Option<Vec<String>>,
    /// 1..=36500: only contacts with no contact (completed activity or sent email) in the
    /// last N x 24 hours; never-contacted ones count from their creation.
    pub inactive_days: Option<i64>,
    /// Lead score at least this (inclusive; issue 16).
    pub min_score: Option<i32>,
    /// Lead score at most this (inclusive).
    pub max_score: Option<i32>,
    /// created_at, updated_at, first_name, last_name, score, or `cf.<key>` (a custom field);
    /// `-` prefix for descending. Default `-created_at`.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `false` omits `total_count`. With `search`, it counts the ranked matches (at most 1,000).
    pub count: Option<bool>,
}

/// Query of `GET /contacts/basic`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactIdsQuery {
    /// Only `id` (the answer is in id order).
    pub sort: Option<String>,
    /// Comma-separated contact ids, at most 500.
    pub ids: Option<String>,
    /// Comma-separated company ids, at most 500: also answers `companies` (needs the
    /// permission to read companies).
    pub company_ids: Option<String>,
}

/// `sort` of a list with one fixed order (any other value is 400).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FixedOrderQuery {
    /// Only the list's own order is accepted (`tag` for `/tags`, `id` for the `basic`
    /// lookups and the export).
    pub sort: Option<String>,
}

/// Paging of `GET /contacts/{id}/status-history`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only `-changed_at` (newest first) is accepted.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Period of `GET /contacts/stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// RFC 3339, inclusive. Default: 30 days before `to`.
    pub from: Option<String>,
    /// RFC 3339, exclusive. Default: now.
    pub to: Option<String>,
}

/// Creates a contact (owner: the caller unless `owner_id` names another user; sales reps
/// only themselves).
#[utoipa::path(post, path = "/api/v1/contacts", request_body = NewContact, tag = "contacts",
    responses((status = 201, body = ContactDetails), (status = 400), (status = 403), (status = 409), (status = 415), (status = 422), (status = 503)))]
pub async fn create_contact(State(state): State<AppState>, can: Can<perm::ContactsWrite>, AppJson(input): AppJson<NewContact>) -> Result<Tagged<ContactDetails>, ApiError> {
    let row = service::create(&state, &can, input).await?;
    Ok(Tagged::created(ETag::of(row.updated_at), row))
}

/// Lists contacts: filters, sort and cursor, or a typo-tolerant `search` ranked by relevance.
#[utoipa::path(get, path = "/api/v1/contacts", params(ContactListQuery), tag = "contacts",
    responses((status = 200, body = Page<ContactDetails>), (status = 400), (status = 403)))]
pub async fn list_contacts(State(state): State<AppState>, can: Can<perm::ContactsRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<Page<ContactDetails>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", params(("id" = i32, Path, description = "Contact id")), tag = "contacts",
    responses((status = 200, body = ContactDetails), (status = 403), (status = 404)))]
pub async fn get_contact(State(state): State<AppState>, can: Can<perm::ContactsRead>, AppPath(id): AppPath<String>) -> Result<Tagged<ContactDetails>, ApiError> {
    let id = parse_id(&id, "contact")?;
    let row = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(row.updated_at), row))
}

/// Replaces the contact. An absent `owner_id` or `status` keeps the current one.
#[utoipa::path(put, path = "/api/v1/contacts/{id}", params(("id" = i32, Path, description = "Contact id")), request_body = NewContact, tag = "contacts",
    responses((status = 200, body = ContactDetails), (status = 400), (status = 403), (status = 404), (status = 409), (status = 415), (status = 422), (status = 503)))]
pub async fn put_contact(
    State(state): State<AppState>,
    can: Can<perm::ContactsWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    ReplaceJson(input, _): ReplaceJson<NewContact, ContactReadOnly>,
) -> Result<Tagged<ContactDetails>, ApiError> {
    let id = parse_id(&id, "contact")?;
    let row = service::replace(&state, &can, id, &if_match, input).await?;
    Ok(Tagged::new(ETag::of(row.updated_at), row))
}

/// Changes the given fields; `{status, status_reason}` is the lead-management transition
/// (recorded in the status history; to `customer` also publishes `contact.converted`).
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", params(("id" = i32, Path, description = "Contact id")), request_body = ContactPatch, tag = "contacts",
    responses((status = 200, body = ContactDetails), (status = 400), (status = 403), (status = 404), (status = 409), (status = 415), (status = 422), (status = 503)))]
pub async fn patch_contact(
    State(state): State<AppState>,
    can: Can<perm::ContactsWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(patch): AppJson<ContactPatch>,
) -> Result<Tagged<ContactDetails>, ApiError> {
    let id = parse_id(&id, "contact")?;
    let row = service::patch(&state, &can, id, &if_match, patch).await?;
    Ok(Tagged::new(ETag::of(row.updated_at), row))
}

/// Moves the contact to the trash (`contact.trashed`; restorable until the tenant's
/// `trash_retention_days` have passed; hidden from lists, search, lookups and GET meanwhile).
/// `?erase=true` (admins only, also for a contact already in the trash) erases it for good
/// (`contact.deleted`: its activities, notes and files go too), e.g. for a data-protection
/// request.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", params(("id" = i32, Path, description = "Contact id"), super::trash::EraseQuery), tag = "contacts",
    responses((status = 204, description = "in the trash (or erased with erase=true)"), (status = 400), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_contact(
    State(state): State<AppState>,
    can: Can<perm::ContactsDelete>,
    AppPath(id): AppPath<String>,
    AppQuery(q): AppQuery<super::trash::EraseQuery>,
    if_match: IfMatch,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "contact")?;
    service::delete(&state, &can, id, &if_match, q.erase()).await?;
    Ok(NoContent)
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}/basic", params(("id" = i32, Path, description = "Contact id")), tag = "contacts",
    responses((status = 200, body = ContactBasicInfo), (status = 403), (status = 404)))]
pub async fn contact_basic(State(state): State<AppState>, can: Can<perm::ContactsRead>, AppPath(id): AppPath<String>) -> Result<AppJson<ContactBasicInfo>, ApiError> {
    let id = parse_id(&id, "contact")?;
    Ok(AppJson(service::basic(&state, &can, id).await?))
}

/// Contacts by id; with `company_ids=` also those companies, so a caller enriching a list with
/// both (deal-service) makes one request to this service.
#[utoipa::path(get, path = "/api/v1/contacts/basic", params(ContactIdsQuery), tag = "contacts",
    responses((status = 200, body = ContactLookup), (status = 400), (status = 403)))]
pub async fn contacts_basic(State(state): State<AppState>, can: Can<perm::ContactsRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<ContactLookup>, ApiError> {
    Ok(AppJson(service::basic_batch(&state, &can, &params).await?))
}

/// Every status change of the contact, newest first (the first entry, with
/// `from_status: null`, is the status it was created with).
#[utoipa::path(get, path = "/api/v1/contacts/{id}/status-history", params(("id" = i32, Path, description = "Contact id"), HistoryQuery), tag = "contacts",
    responses((status = 200, body = Page<StatusHistoryEntry>), (status = 400), (status = 403), (status = 404)))]
pub async fn status_history(
    State(state): State<AppState>,
    can: Can<perm::ContactsRead>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<StatusHistoryEntry>>, ApiError> {
    let id = parse_id(&id, "contact")?;
    Ok(AppJson(service::status_history(&state, &can, id, &params).await?))
}

/// Counts by status and conversions over `[from, to)` (default: the last 30 days).
#[utoipa::path(get, path = "/api/v1/contacts/stats", params(StatsQuery), tag = "contacts",
    responses((status = 200, body = ContactStats), (status = 400), (status = 403)))]
pub async fn contact_stats(State(state): State<AppState>, can: Can<perm::ContactsRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<ContactStats>, ApiError> {
    Ok(AppJson(service::stats(&state, &can, &params).await?))
}

/// The tenant's tags with how many contacts and companies carry each.
#[utoipa::path(get, path = "/api/v1/tags", params(FixedOrderQuery), tag = "tags", responses((status = 200, body = TagList), (status = 400), (status = 403)))]
pub async fn list_tags(State(state): State<AppState>, can: Can<perm::ContactsRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<TagList>, ApiError> {
    Ok(AppJson(service::tags(&state, &can, &params).await?))
}

/// The fields of a contact only a response carries: dropped from a PUT body, so a record read
/// with GET can be PUT back exactly as read.
pub struct ContactReadOnly;

impl crm_web::ReadOnlyFields for ContactReadOnly {
    const READ_ONLY: &'static [&'static str] = &[
        "id",
        "company_name",
        "owner_name",
        "marketing_consent",
        "last_contacted_at",
        "score",
        "created_at",
        "created_by",
        "updated_at",
    ];
}
