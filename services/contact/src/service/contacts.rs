//! Contacts: CRUD with owner names, filters and fuzzy search, the lead status history and its
//! stats, basic lookups for other services, and the tenant's tags.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use crm_client_contact::subjects::{CONTACT_CONVERTED, CONTACT_CREATED, CONTACT_UPDATED};
use crm_client_contact::{ContactBasicInfo, ContactConverted, ContactDetails, ContactLookup, ContactStatus};
use crm_events::publish;
use crm_web::{Action, ApiError, Can, ETag, FieldErrors, IfMatch, Page, QueryParams, Resource, Scope, parse_limit, perm, validate};
use serde::{Deserialize, Serialize};

use super::{email_taken, fixed_order, missing_reference, on_email_conflict, owners, parse_list_cursor, parse_sort, tag_filter};
use crate::AppState;
use super::custom_fields::{self, Entity};
use crate::domain::{self, ContactPatch, ContactStats, ContactWrite, MAX_SEARCH_LEN, MAX_SEARCH_WORDS, NewContact, StatusHistoryEntry, TagList};
use crate::repo::contacts::{self as repo, CONTACT_SORTS, ContactFilter, StatusChange};
use crate::repo::{self as db, ListCursor, companies};

fn contact_cursor(c: &ContactDetails, sort: (&'static str, bool)) -> ListCursor {
    let (t, ts, s) = match sort.0 {
        "first_name" => (Some(c.first_name.clone()), None, None),
        "last_name" => (Some(c.last_name.clone()), None, None),
        "updated_at" => (None, Some(c.updated_at), None),
        "score" => (None, None, Some(c.score as f32)),
        _ => (None, Some(c.created_at), None),
    };
    ListCursor { k: sort.0.to_owned(), desc: sort.1, t, ts, s, id: c.id }
}

/// Whether the caller may change this contact (`own`: owner or creator).
fn ensure_reaches<P>(can: &Can<P>, c: &ContactDetails) -> Result<(), ApiError> {
    if can.reaches([c.owner_id, Some(c.created_by)]) {
        Ok(())
    } else {
        Err(ApiError::forbidden("sales reps change only the contacts they own"))
    }
}

/// With `own` scope, a contact can only be given to oneself.
fn ensure_own_owner(can: &Can<perm::ContactsWrite>, owner_id: Option<i32>) -> Result<(), ApiError> {
    if can.scope == Scope::Own && owner_id != Some(can.user_id) {
        return Err(ApiError::forbidden("sales reps cannot assign contacts to someone else"));
    }
    Ok(())
}

fn validated(input: NewContact, default_status: ContactStatus) -> Result<(ContactWrite, Option<String>), ApiError> {
    let reason = input.status_reason.clone().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    let mut errors = FieldErrors::new();
    let w = input.validate(&mut errors, default_status);
    errors.into_result()?;
    Ok((w, reason))
}

/// Names the owner of one contact (after the transaction: auth-service is not called with
/// a transaction open).
async fn with_owner_name<P>(state: &AppState, can: &Can<P>, contact: ContactDetails) -> ContactDetails {
    let mut out = [contact];
    owners::enrich(state.users.as_ref(), &can.ctx, &mut out).await;
    let [contact] = out;
    contact
}

/// `POST /contacts`: owned by the caller unless `owner_id` names another user (not for
/// sales reps); publishes `contact.created`.
pub async fn create(state: &AppState, can: &Can<perm::ContactsWrite>, input: NewContact) -> Result<ContactDetails, ApiError> {
    let (mut w, reason) = validated(input, ContactStatus::Lead)?;
    w.owner_id = w.owner_id.or(Some(can.user_id));
    ensure_own_owner(can, w.owner_id)?;
    owners::check(state.users.as_ref(), &can.ctx, can.user_id, w.owner_id).await?;

    let tx = state.db.tenant(&can.tenant_id).await?;
    custom_fields::validate_write(&tx, Entity::Contact, &mut w.custom_fields).await?;
    if let Some(company_id) = w.company_id
        && !companies::company_exists(&tx, company_id).await?
    {
        return Err(missing_reference("company_id", "company"));
    }
    if let Some(email) = &w.email
        && repo::email_taken(&tx, email, None).await?
    {
        return Err(email_taken());
    }
    // ON CONFLICT DO NOTHING: no row back means a concurrent writer took the email.
    let contact = repo::insert_contacts(&tx, &[&w], can.user_id).await?.pop().ok_or_else(email_taken)?;
    let change = StatusChange { contact_id: contact.id, from: None, to: contact.status, reason: reason.as_deref() };
    repo::record_status_changes(&tx, &[change], can.user_id).await?;
    publish(&tx, Some(can.user_id), CONTACT_CREATED, contact.basic()).await?;
    tx.commit().await?;
    Ok(with_owner_name(state, can, contact).await)
}

/// Longest `?inactive_days=` (a century): beyond it no contact can qualify anyway.
pub const MAX_INACTIVE_DAYS: i64 = 36_500;

/// `?inactive_days=N`: a whole number of days, 1..=[`MAX_INACTIVE_DAYS`]. A day is 24 hours
/// counted back from the request's instant, so the answer is the same in every time zone.
fn inactive_days(params: &QueryParams, errors: &mut FieldErrors) -> Option<i64> {
    let raw = params.one("inactive_days")?;
    match raw.trim().parse::<i64>() {
        Ok(days) if (1..=MAX_INACTIVE_DAYS).contains(&days) => Some(days),
        _ => {
            errors.add("inactive_days", "must be a whole number of days from 1 to 36500");
            None
        }
    }
}

/// `?min_score=` / `?max_score=`: a whole number (a score is a sum of whole points, can be negative).
fn score_bound(params: &QueryParams, errors: &mut FieldErrors, key: &'static str) -> Option<i32> {
    let raw = params.one(key)?;
    let parsed = raw.trim().parse().ok();
    if parsed.is_none() {
        errors.add(key, "must be a whole number");
    }
    parsed
}

/// `GET /contacts`: filters, then either the sorted list or the fuzzy `search`.
pub async fn list(state: &AppState, can: &Can<perm::ContactsRead>, params: &QueryParams) -> Result<Page<ContactDetails>, ApiError> {
    let mut errors = FieldErrors::new();
    let defs = custom_fields::definitions_of(state, &can.tenant_id, Entity::Contact).await?;
    let cf_sort = custom_fields::parse_sort(&defs, params.one("sort"), "c")?;
    let status = params.one("status").map(|s| domain::status(&mut errors, Some(s), ContactStatus::Lead));
    let filter = ContactFilter {
        status,
        owner_id: params.id(&mut errors, "owner_id"),
        company_id: params.id(&mut errors, "company_id"),
        created_after: params.time(&mut errors, "created_after"),
        created_before: params.time(&mut errors, "created_before"),
        tags: tag_filter(params, &mut errors),
        inactive_since: inactive_days(params, &mut errors).map(|days| Utc::now() - Duration::days(days)),
        custom: custom_fields::parse_filters(&mut errors, &defs, params),
        min_score: score_bound(params, &mut errors, "min_score"),
        max_score: score_bound(params, &mut errors, "max_score"),
    };
    let search = params.one("search").map(str::trim).filter(|s| !s.is_empty());
    if let Some(q) = search {
        let words = domain::search_words(q);
        if q.chars().count() > MAX_SEARCH_LEN {
            errors.add("search", "at most 200 characters");
        } else if words.is_empty() {
            errors.add("search", "needs a word of at least two letters (or one Chinese, Japanese or Korean character)");
        }
        if params.one("sort").is_some() {
            errors.add("sort", "search results are ranked by relevance: no sort with search");
        }
    }
    errors.into_result()?;
    let limit = parse_limit(params.one("limit"))?;

    let mut page = match (search, cf_sort) {
        (Some(q), _) => {
            let after = parse_list_cursor(&state.cursors, params.one("cursor"), "search", true)?;
            search_page(state, can, q, &filter, after, limit, params.count()).await?
        }
        (None, Some(sort)) => custom_fields::contacts_sorted_by_field(state, can, &filter, &sort, params, limit).await?,
        (None, None) => {
            let sort = parse_sort(params.one("sort"), &CONTACT_SORTS, ("created_at", true))?;
            let after = parse_list_cursor(&state.cursors, params.one("cursor"), sort.0, sort.1)?;
            let tx = state.db.tenant_read(&can.tenant_id).await?;
            let rows = repo::list_contacts(&tx, &filter, sort, after.as_ref(), limit).await?;
            let total = if params.count() { Some(repo::count_contacts(&tx, &filter).await?) } else { None };
            tx.commit().await?;
            Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&contact_cursor(last, sort)))
        }
    };
    owners::enrich(state.users.as_ref(), &can.ctx, &mut page.data).await;
    Ok(page)
}

/// Fuzzy search: the database splits the query into words as it indexes names (accents
/// folded, CJK characters one by one); each word is matched against the tenant's vocabulary
/// (exact, prefix, within 1-2 typos, or trigram-similar), then the contacts having a match for every word are
/// ranked by pg_trgm similarity.
#[allow(clippy::too_many_arguments)]
async fn search_page(
    state: &AppState,
    can: &Can<perm::ContactsRead>,
    query: &str,
    filter: &ContactFilter,
    after: Option<ListCursor>,
    limit: i64,
    count: bool,
) -> Result<Page<ContactDetails>, ApiError> {
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    db::set_similarity_threshold(&tx, 0.2).await?;
    let candidates = repo::search_term_candidates(&tx, query, MAX_SEARCH_WORDS as i32).await?;
    let term_sets: Vec<Vec<String>> = candidates.iter().map(|(w, c)| domain::best_terms(w, c, 8)).collect();
    if term_sets.is_empty() || term_sets.iter().any(Vec::is_empty) {
        tx.commit().await?;
        return Ok(Page::from_overfetch(Vec::new(), limit, count.then_some(0), |_: &ContactDetails| String::new()));
    }
    let hits =
        repo::search_contacts(&tx, &term_sets, query, filter, after.as_ref(), limit, state.settings.search_candidates).await?;
    tx.commit().await?;
    let total = count.then(|| hits.first().map_or(0, |h| h.total));
    let page = Page::from_overfetch(hits, limit, total, |last| {
        state.cursors.encode(&ListCursor { k: "search".into(), desc: true, t: None, ts: None, s: Some(last.score), id: last.contact.id })
    });
    Ok(Page { data: page.data.into_iter().map(|h| h.contact).collect(), pagination: page.pagination })
}

/// `GET /contacts/{id}`.
pub async fn get(state: &AppState, can: &Can<perm::ContactsRead>, id: i32) -> Result<ContactDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let contact = repo::contact_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    tx.commit().await?;
    Ok(with_owner_name(state, can, contact).await)
}

/// Fields left out of `contact.updated`'s `changes`: bookkeeping and names joined from
/// other records (they change with those records, not with this write).
const DERIVED_FIELDS: &[&str] = &["updated_at", "created_at", "created_by", "owner_name", "company_name"];

/// PUT and PATCH: the new owner when the body names one (validated before the
/// transaction), then lock, build the full input from the current row, validate, write;
/// publishes `contact.updated` (and `contact.converted` on a change to `customer`).
async fn update(
    state: &AppState,
    can: &Can<perm::ContactsWrite>,
    id: i32,
    if_match: &IfMatch,
    new_owner: Option<Option<i32>>,
    input: impl FnOnce(&ContactDetails) -> NewContact,
) -> Result<ContactDetails, ApiError> {
    if let Some(owner) = new_owner {
        ensure_own_owner(can, owner)?;
        owners::check(state.users.as_ref(), &can.ctx, can.user_id, owner).await?;
    }
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::contact_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    ensure_reaches(can, &current)?;
    if_match.check(&ETag::of(current.updated_at))?;
    let (mut w, reason) = validated(input(&current), current.status)?;
    custom_fields::validate_write(&tx, Entity::Contact, &mut w.custom_fields).await?;
    if w.company_id != current.company_id
        && let Some(company_id) = w.company_id
        && !companies::company_exists(&tx, company_id).await?
    {
        return Err(missing_reference("company_id", "company"));
    }
    if let Some(email) = &w.email
        && !email.eq_ignore_ascii_case(&current.email)
        && repo::email_taken(&tx, email, Some(id)).await?
    {
        return Err(email_taken());
    }
    let contact = repo::update_contacts(&tx, &[(id, &w)]).await.map_err(on_email_conflict)?.pop().ok_or_else(|| ApiError::not_found("contact"))?;
    if contact.status != current.status {
        let change = StatusChange { contact_id: id, from: Some(current.status), to: contact.status, reason: reason.as_deref() };
        repo::record_status_changes(&tx, &[change], can.user_id).await?;
        if contact.status == ContactStatus::Customer {
            let data = ContactConverted { contact: contact.basic(), from_status: current.status.as_str().to_owned(), reason: reason.clone() };
            publish(&tx, Some(can.user_id), CONTACT_CONVERTED, data).await?;
        }
    }
    // `changes` (old -> new per field) for the audit log: exact here, from the locked row.
    let mut data = serde_json::to_value(contact.basic()).map_err(ApiError::internal)?;
    data["changes"] = crm_events::changes(&current, &contact, DERIVED_FIELDS).map_err(ApiError::internal)?;
    publish(&tx, Some(can.user_id), CONTACT_UPDATED, data).await?;
    tx.commit().await?;
    Ok(with_owner_name(state, can, contact).await)
}

/// `PUT /contacts/{id}`: replaces the contact. An absent `owner_id` or `status` keeps the
/// current one.
pub async fn replace(state: &AppState, can: &Can<perm::ContactsWrite>, id: i32, if_match: &IfMatch, input: NewContact) -> Result<ContactDetails, ApiError> {
    let new_owner = input.owner_id.map(Some);
    update(state, can, id, if_match, new_owner, |current| {
        let mut input = input;
        input.owner_id = input.owner_id.or(current.owner_id);
        input
    })
    .await
}

/// `PATCH /contacts/{id}`: changes the given fields (400 when there are none).
pub async fn patch(state: &AppState, can: &Can<perm::ContactsWrite>, id: i32, if_match: &IfMatch, patch: ContactPatch) -> Result<ContactDetails, ApiError> {
    if patch.is_empty() {
        return Err(ApiError::validation([("body", "nothing to update")]));
    }
    let new_owner = patch.owner_id;
    update(state, can, id, if_match, new_owner, |current| patch.apply(current)).await
}

/// `DELETE /contacts/{id}`: moves the contact to the trash (`contact.trashed`, issue 16);
/// with `?erase=true` (admins) erases it for good, also from the trash (`contact.deleted`).
/// See [`super::trash`].
pub async fn delete(state: &AppState, can: &Can<perm::ContactsDelete>, id: i32, if_match: &IfMatch, erase: bool) -> Result<(), ApiError> {
    if erase { super::trash::erase_contact(state, can, id, if_match).await } else { super::trash::trash_contact(state, can, id, if_match).await }
}

/// `GET /contacts/{id}/basic`.
pub async fn basic(state: &AppState, can: &Can<perm::ContactsRead>, id: i32) -> Result<ContactBasicInfo, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = repo::contacts_basic(&tx, &[id]).await?;
    tx.commit().await?;
    found.into_iter().next().ok_or_else(|| ApiError::not_found("contact"))
}

/// `GET /contacts/basic?ids=..[&company_ids=..]`: contacts by id and, when asked (and the
/// role may read companies), companies too, so one request serves a list enriching both.
pub async fn basic_batch(state: &AppState, can: &Can<perm::ContactsRead>, params: &QueryParams) -> Result<ContactLookup, ApiError> {
    fixed_order(params, "id")?;
    let ids = validate::batch_ids("ids", params.one("ids"))?;
    let company_ids = match params.one("company_ids") {
        None => None,
        Some(raw) => {
            can.require(Resource::Companies, Action::Read)?;
            Some(validate::batch_ids("company_ids", Some(raw))?)
        }
    };
    let tx = state.db.tenant(&can.tenant_id).await?;
    let data = repo::contacts_basic(&tx, &ids).await?;
    let companies = match company_ids {
        Some(ids) => Some(companies::companies_basic(&tx, &ids).await?),
        None => None,
    };
    tx.commit().await?;
    Ok(ContactLookup { data, companies })
}

#[derive(Debug, Serialize, Deserialize)]
struct HistoryCursor {
    before: i64,
}

/// `GET /contacts/{id}/status-history`: newest first.
pub async fn status_history(
    state: &AppState,
    can: &Can<perm::ContactsRead>,
    id: i32,
    params: &QueryParams,
) -> Result<Page<StatusHistoryEntry>, ApiError> {
    fixed_order(params, "-changed_at")?;
    let limit = parse_limit(params.one("limit"))?;
    let after: Option<HistoryCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    repo::contact_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    let rows = repo::status_history(&tx, id, after.map(|c| c.before), limit).await?;
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, None, |last| state.cursors.encode(&HistoryCursor { before: last.id })))
}

/// `GET /contacts/stats`: counts by status and conversions over `[from, to)` (default: the
/// last 30 days).
pub async fn stats(state: &AppState, can: &Can<perm::ContactsRead>, params: &QueryParams) -> Result<ContactStats, ApiError> {
    let mut errors = FieldErrors::new();
    let to = params.time(&mut errors, "to").unwrap_or_else(Utc::now);
    let from = params.time(&mut errors, "from").unwrap_or(to - Duration::days(30));
    errors.check("from", from < to, "must be before `to`");
    errors.into_result()?;
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let counts = repo::count_by_status(&tx).await?;
    let (conversions, new_leads) = repo::conversions(&tx, from, to).await?;
    tx.commit().await?;
    let mut by_status: BTreeMap<String, i64> = ContactStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
    by_status.extend(counts);
    let conversion_rate = if new_leads > 0 { conversions as f64 / new_leads as f64 } else { 0.0 };
    Ok(ContactStats { from, to, by_status, conversions, new_leads, conversion_rate })
}

/// `GET /tags`: the tenant's tags with how many contacts and companies carry each.
pub async fn tags(state: &AppState, can: &Can<perm::ContactsRead>, params: &QueryParams) -> Result<TagList, ApiError> {
    fixed_order(params, "tag")?;
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let data = repo::tag_counts(&tx).await?;
    tx.commit().await?;
    Ok(TagList { data })
}
