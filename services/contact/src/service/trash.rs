//! The trash of contacts and companies (issue 16).
//!
//! * `DELETE /contacts/{id}` and `/companies/{id}` move the record to the trash
//!   (`deleted_at`, `deleted_by`) and publish `contact.trashed` / `company.trashed`. A trashed
//!   record is hidden everywhere a live one shows: lists, search, counts, exports, GET by id
//!   (404), the `basic` lookups other services enrich names with (not found: a deal keeps its
//!   `company_id` but shows no company name), and duplicate checks (its email is free for a
//!   new contact). References to it are kept, so a restore brings everything back.
//! * Restore (`POST /trash/{contacts|companies}/{id}/restore`) publishes `*.restored`; a
//!   contact whose email a live contact took meanwhile is 409 `EMAIL_TAKEN` naming `email`.
//! * Erase (`DELETE /contacts/{id}?erase=true`, `DELETE /trash/{type}/{id}`; admins) and the
//!   purge after the tenant's `trash_retention_days` delete the row for good and publish the
//!   existing `contact.deleted` / `company.deleted`, whose consumers (deal-service,
//!   communication-service) erase or drop the references: `.deleted` keeps meaning "gone".
//! * The purge ([`purge_task`]) keeps no state: each sweep computes every tenant's cut-off
//!   from the clock and its setting, and claims due rows with `FOR UPDATE SKIP LOCKED`, so
//!   replicas never erase or announce a row twice, and a restart loses nothing.
//!
//! Who sees and restores what: the permission to delete the kind (`contacts: delete`,
//! `companies: delete`). Admins and managers: everything; sales reps (own scope): the
//! contacts they deleted, own or created (they cannot delete companies, so they see none).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use crm_client_contact::subjects::{COMPANY_DELETED, COMPANY_RESTORED, COMPANY_TRASHED, CONTACT_DELETED, CONTACT_RESTORED, CONTACT_TRASHED};
use crm_client_contact::{CompanyDetails, CompanyTrashed, ContactDetails, ContactTrashed};
use crm_events::{publish, publish_many};
use crm_runtime::Task;
use crm_tenant::{TenantDb, TenantId};
use crm_web::{Action, ApiError, Can, ETag, IfMatch, Page, QueryParams, Resource, Role, Scope, parse_limit, perm};
use serde::Serialize;
use utoipa::ToSchema;

use super::{email_taken, fixed_order, on_email_conflict, owners};
use crate::AppState;
use crate::repo::trash::{self as repo, TrashCursor, TrashRow, TrashScope};
use crate::repo::{companies as company_repo, contacts as contact_repo};

/// A record in the trash, as `GET /trash` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrashItem {
    /// `contact` or `company`.
    #[serde(rename = "type")]
    #[schema(example = "contact")]
    pub kind: String,
    pub id: i32,
    /// The contact's full name or the company's name.
    pub name: String,
    /// The contact's email (`null` without one, and for companies).
    pub email: Option<String>,
    /// When it was moved to the trash.
    pub deleted_at: DateTime<Utc>,
    /// Who moved it (auth-service user id; `null` when the platform did).
    pub deleted_by: Option<i32>,
    /// When the purge erases it for good: `deleted_at` + the tenant's `trash_retention_days`
    /// (the purge runs periodically, so it goes shortly after this instant).
    pub purge_at: DateTime<Utc>,
    /// The owner of a contact (for companies `null`).
    pub owner_id: Option<i32>,
    /// The record it was merged into, when a merge put it here (else `null`).
    pub merged_into: Option<i32>,
}

fn item(row: TrashRow, retention_days: i32) -> TrashItem {
    TrashItem {
        kind: row.kind.to_owned(),
        id: row.id,
        name: row.name,
        email: row.email,
        purge_at: row.deleted_at + Duration::days(i64::from(retention_days)),
        deleted_at: row.deleted_at,
        deleted_by: row.deleted_by,
        owner_id: row.owner_id,
        merged_into: row.merged_into,
    }
}

/// The caller's scope for deleting `resource`, `None` when the role may not.
fn delete_scope<P>(can: &Can<P>, resource: Resource) -> Option<Scope> {
    can.caller.user.require(resource, Action::Delete).ok()
}

/// `Some(None)` for every row, `Some(Some(me))` for the own scope, `None` when excluded.
fn scope_filter<P>(can: &Can<P>, scope: Option<Scope>) -> Option<Option<i32>> {
    match scope {
        Some(Scope::All) => Some(None),
        Some(Scope::Own) => Some(Some(can.user_id)),
        _ => None,
    }
}

async fn retention(state: &AppState, tenant: &TenantId) -> Result<i32, ApiError> {
    let ptx = state.db.platform().await?;
    let days = repo::retention_days(&ptx, tenant).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    ptx.commit().await?;
    Ok(days)
}

/// `GET /trash?type=contact|company`: newest deletion first, cursor-paginated.
pub async fn list(state: &AppState, can: &Can<perm::ContactsDelete>, params: &QueryParams) -> Result<Page<TrashItem>, ApiError> {
    fixed_order(params, "-deleted_at")?;
    let limit = parse_limit(params.one("limit"))?;
    let kind = params.one("type").map(str::trim).filter(|t| !t.is_empty());
    let companies = delete_scope(can, Resource::Companies);
    let scope = match kind {
        None => TrashScope { contacts: scope_filter(can, Some(can.scope)), companies: scope_filter(can, companies) },
        Some("contact") => TrashScope { contacts: scope_filter(can, Some(can.scope)), companies: None },
        Some("company") => {
            can.require(Resource::Companies, Action::Delete)?;
            TrashScope { contacts: None, companies: scope_filter(can, companies) }
        }
        Some(_) => return Err(ApiError::validation([("type", "must be contact or company")])),
    };
    let after: Option<TrashCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    let days = retention(state, &can.tenant_id).await?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let rows = repo::list(&tx, scope, after.as_ref(), limit).await?;
    tx.commit().await?;
    let page = Page::from_overfetch(rows, limit, None, |last| {
        state.cursors.encode(&TrashCursor { at: last.deleted_at, kind: last.kind.to_owned(), id: last.id })
    });
    Ok(Page { data: page.data.into_iter().map(|r| item(r, days)).collect(), pagination: page.pagination })
}

/// 403 unless the caller is an admin (erasing for good is a data-protection act).
fn require_admin<P>(can: &Can<P>) -> Result<(), ApiError> {
    if can.role == Role::Admin { Ok(()) } else { Err(ApiError::forbidden("only admins erase records for good")) }
}

/// `DELETE /contacts/{id}`: moves a live contact to the trash; publishes `contact.trashed`.
/// A sales rep only reaches the contacts it owns or created; `If-Match` as for updates.
pub async fn trash_contact(state: &AppState, can: &Can<perm::ContactsDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let contact = contact_repo::contact_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    if !can.reaches([contact.owner_id, Some(contact.created_by)]) {
        return Err(ApiError::forbidden("sales reps change only the contacts they own"));
    }
    if_match.check(&ETag::of(contact.updated_at))?;
    let deleted_at = repo::trash_contact(&tx, id, Some(can.user_id)).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    let data = ContactTrashed { contact: contact.basic(), deleted_by: Some(can.user_id), deleted_at };
    publish(&tx, Some(can.user_id), CONTACT_TRASHED, data).await?;
    tx.commit().await?;
    Ok(())
}

/// Erases a contact for good, live or trashed (admins); publishes `contact.deleted`. For a
/// live contact a given `If-Match` must match.
pub async fn erase_contact(state: &AppState, can: &Can<perm::ContactsDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    require_admin(can)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = repo::contact_state_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    if found.deleted_at.is_none()
        && let Some(live) = contact_repo::contact_by_id(&tx, id).await?
    {
        if_match.check(&ETag::of(live.updated_at))?;
    }
    contact_repo::delete_contact(&tx, id).await?;
    publish(&tx, Some(can.user_id), CONTACT_DELETED, found.basic).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /trash/contacts/{id}/restore`: the contact back among the live ones (with its
/// references, which were kept); publishes `contact.restored`. 404 when it is not in the
/// trash; 409 `EMAIL_TAKEN` (field `email`) when a live contact has its email now.
pub async fn restore_contact(state: &AppState, can: &Can<perm::ContactsDelete>, id: i32) -> Result<ContactDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = repo::contact_state_for_update(&tx, id).await?.filter(|c| c.deleted_at.is_some()).ok_or_else(|| ApiError::not_found("contact in the trash"))?;
    if !can.reaches([found.deleted_by, found.owner_id, Some(found.created_by)]) {
        return Err(ApiError::forbidden("sales reps restore only the contacts they deleted or own"));
    }
    if !found.basic.email.is_empty() && contact_repo::email_taken(&tx, &found.basic.email, Some(id)).await? {
        return Err(email_taken());
    }
    repo::restore_contact(&tx, id).await.map_err(on_email_conflict)?;
    let contact = contact_repo::contact_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    publish(&tx, Some(can.user_id), CONTACT_RESTORED, contact.basic()).await?;
    tx.commit().await?;
    let mut out = [contact];
    owners::enrich(state.users.as_ref(), &can.ctx, &mut out).await;
    let [contact] = out;
    Ok(contact)
}

/// `DELETE /companies/{id}`: moves a live company to the trash; publishes `company.trashed`.
/// Its contacts and subsidiaries keep the reference (they show no company name meanwhile);
/// its name leaves their search words until a restore.
pub async fn trash_company(state: &AppState, can: &Can<perm::CompaniesDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let company = company_repo::company_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("company"))?;
    if_match.check(&ETag::of(company.updated_at))?;
    contact_repo::unword_company_contacts(&tx, id).await?;
    let deleted_at = repo::trash_company(&tx, id, Some(can.user_id)).await?.ok_or_else(|| ApiError::not_found("company"))?;
    let data = CompanyTrashed { company: company.basic(), deleted_by: Some(can.user_id), deleted_at };
    publish(&tx, Some(can.user_id), COMPANY_TRASHED, data).await?;
    tx.commit().await?;
    Ok(())
}

/// Erases a company for good, live or trashed (admins); publishes `company.deleted`.
pub async fn erase_company(state: &AppState, can: &Can<perm::CompaniesDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    require_admin(can)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = repo::company_state_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("company"))?;
    if found.deleted_at.is_none()
        && let Some(live) = company_repo::company_by_id(&tx, id).await?
    {
        if_match.check(&ETag::of(live.updated_at))?;
        contact_repo::unword_company_contacts(&tx, id).await?;
    }
    company_repo::delete_company(&tx, id).await?;
    publish(&tx, Some(can.user_id), COMPANY_DELETED, found.basic).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /trash/companies/{id}/restore`; publishes `company.restored`. 404 when it is not in
/// the trash.
pub async fn restore_company(state: &AppState, can: &Can<perm::CompaniesDelete>, id: i32) -> Result<CompanyDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = repo::company_state_for_update(&tx, id).await?.filter(|c| c.deleted_at.is_some()).ok_or_else(|| ApiError::not_found("company in the trash"))?;
    if !can.reaches([found.deleted_by, Some(found.created_by)]) {
        return Err(ApiError::forbidden("only the companies you deleted or created"));
    }
    repo::restore_company(&tx, id).await?;
    let company = company_repo::company_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("company"))?;
    // Its contacts get its name back in their search words.
    contact_repo::reword_company_contacts(&tx, id, &company.name).await?;
    publish(&tx, Some(can.user_id), COMPANY_RESTORED, company.basic()).await?;
    tx.commit().await?;
    Ok(company)
}

/// What one purge of a tenant erased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PurgeReport {
    /// Contacts erased (one `contact.deleted` each).
    pub contacts: usize,
    /// Companies erased (one `company.deleted` each).
    pub companies: usize,
    /// The tenant's `trash_retention_days` the cut-off was computed with.
    pub retention_days: i32,
}

/// Rows erased per transaction: bounded transactions on a large backlog.
pub const PURGE_BATCH: i64 = 500;

/// Erases the tenant's contacts and companies trashed `retention_days` or more before `now`,
/// in transactions of at most [`PURGE_BATCH`] rows of each kind, each publishing the
/// `*.deleted` events of the rows it erased (outbox, same transaction).
pub async fn purge_tenant(db: &TenantDb, tenant: &TenantId, retention_days: i32, now: DateTime<Utc>) -> Result<PurgeReport, ApiError> {
    let cutoff = now - Duration::days(i64::from(retention_days));
    let mut report = PurgeReport { retention_days, ..PurgeReport::default() };
    loop {
        let tx = db.tenant(tenant).await?;
        let contacts = repo::purge_contacts(&tx, cutoff, PURGE_BATCH).await?;
        let companies = repo::purge_companies(&tx, cutoff, PURGE_BATCH).await?;
        let mut events = Vec::with_capacity(contacts.len() + companies.len());
        for c in &contacts {
            events.push((CONTACT_DELETED, serde_json::to_value(c).map_err(ApiError::internal)?));
        }
        for c in &companies {
            events.push((COMPANY_DELETED, serde_json::to_value(c).map_err(ApiError::internal)?));
        }
        publish_many(&tx, None, events).await?;
        tx.commit().await?;
        report.contacts += contacts.len();
        report.companies += companies.len();
        if (contacts.len() as i64) < PURGE_BATCH && (companies.len() as i64) < PURGE_BATCH {
            return Ok(report);
        }
    }
}

/// One sweep of every tenant; a failing tenant is logged and retried at the next sweep.
pub async fn sweep(db: &TenantDb) -> Result<PurgeReport, ApiError> {
    let ptx = db.platform().await?;
    let tenants = repo::tenants_with_retention(&ptx).await?;
    ptx.commit().await?;
    let mut total = PurgeReport::default();
    for (tenant, days) in tenants {
        match purge_tenant(db, &tenant, days, Utc::now()).await {
            Ok(r) => {
                if r.contacts + r.companies > 0 {
                    tracing::info!(tenant_id = %tenant, contacts = r.contacts, companies = r.companies, "trash purged");
                }
                total.contacts += r.contacts;
                total.companies += r.companies;
            }
            Err(e) => tracing::warn!(tenant_id = %tenant, error = %e, "trash purge failed for a tenant; retried next sweep"),
        }
    }
    Ok(total)
}

/// The purge loop, returned from [`crate::build`] as a background task: a sweep at start,
/// then every `interval` (`TRASH_PURGE_POLL_SECS`). Stateless (see the module doc).
pub fn purge_task(db: TenantDb, interval: StdDuration, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Task {
    let future = async move {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            if let Err(e) = sweep(&db).await {
                tracing::warn!(error = %e, "trash purge sweep failed; retried next sweep");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    };
    Task { name: "trash purge", future: Box::pin(future) }
}

/// `POST /trash/purge` (admins): purges the caller's tenant now and answers what went.
pub async fn purge_now(state: &AppState, can: &Can<perm::ContactsDelete>) -> Result<PurgeReport, ApiError> {
    require_admin(can)?;
    let days = retention(state, &can.tenant_id).await?;
    purge_tenant(&state.db, &can.tenant_id, days, Utc::now()).await
}
