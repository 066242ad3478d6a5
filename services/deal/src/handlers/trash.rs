//! `/trash/deals` (issue 16): the trash of deals, restore, erase, and the purge run on
//! demand. Contacts and companies: contact-service's `/trash`. See
//! [`crate::service::trash`] for the rules.

use axum::extract::State;
use crm_client_deal::DealResponse;
use crm_web::etag::{ETag, IfMatch, Tagged};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, NoContent, Page, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::service::parse_id;
use crate::service::trash::{self as service, DealPurgeReport, TrashedDealItem};

/// `?erase=` of `DELETE /deals/{id}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EraseQuery {
    /// `true` (admins only): erase for good now, also a deal already in the trash (publishes
    /// `deal.deleted`); default `false`: move it to the trash.
    pub erase: Option<bool>,
}

/// Query of `GET /trash/deals`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrashQuery {
    /// Only `-deleted_at` (newest deletion first).
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// Trashed deals, newest deletion first, with who deleted each, when, and when the purge
/// erases it. Admins and managers see every one; sales reps those they deleted, own or
/// created.
#[utoipa::path(get, path = "/api/v1/trash/deals", params(TrashQuery), tag = "trash",
    responses((status = 200, body = Page<TrashedDealItem>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_trashed_deals(
    State(state): State<AppState>,
    can: Can<perm::DealsDelete>,
    AppQuery(q): AppQuery<TrashQuery>,
) -> Result<AppJson<Page<TrashedDealItem>>, ApiError> {
    if q.sort.as_deref().map(str::trim).is_some_and(|s| !s.is_empty() && s != "-deleted_at") {
        return Err(ApiError::validation([("sort", "this list has one order: -deleted_at")]));
    }
    Ok(AppJson(service::list(&state, &can, q.limit.as_deref(), q.cursor.as_deref()).await?))
}

/// Restore a deal from the trash, with its contacts and stage history; publishes
/// `deal.restored`. 404 when it is not in the trash.
#[utoipa::path(post, path = "/api/v1/trash/deals/{id}/restore", params(("id" = i32, Path, description = "Deal id")), tag = "trash",
    responses((status = 200, description = "The deal", body = DealResponse), (status = 401), (status = 403), (status = 404)))]
pub async fn restore_deal(State(state): State<AppState>, can: Can<perm::DealsDelete>, AppPath(id): AppPath<String>) -> Result<Tagged<DealResponse>, ApiError> {
    let deal = service::restore_deal(&state, &can, parse_id(&id, "deal")?).await?;
    Ok(Tagged::new(ETag::of(deal.updated_at), deal))
}

/// Erase a deal for good (admins), in the trash or not: the same as
/// `DELETE /deals/{id}?erase=true`; publishes `deal.deleted`.
#[utoipa::path(delete, path = "/api/v1/trash/deals/{id}", params(("id" = i32, Path, description = "Deal id")), tag = "trash",
    responses((status = 204, description = "Erased"), (status = 401), (status = 403), (status = 404)))]
pub async fn erase_deal(State(state): State<AppState>, can: Can<perm::DealsDelete>, AppPath(id): AppPath<String>, if_match: IfMatch) -> Result<NoContent, ApiError> {
    service::erase_deal(&state, &can, parse_id(&id, "deal")?, &if_match).await?;
    Ok(NoContent)
}

/// Run the purge of the caller's tenant now (admins): erases the deals in the trash for
/// `trash_retention_days` or more (one `deal.deleted` each). The periodic purge does the
/// same for every tenant (`TRASH_PURGE_POLL_SECS`).
#[utoipa::path(post, path = "/api/v1/trash/deals/purge", tag = "trash",
    responses((status = 200, description = "What was erased", body = DealPurgeReport), (status = 401), (status = 403)))]
pub async fn purge_trashed_deals(State(state): State<AppState>, can: Can<perm::DealsDelete>) -> Result<AppJson<DealPurgeReport>, ApiError> {
    Ok(AppJson(service::purge_now(&state, &can).await?))
}
