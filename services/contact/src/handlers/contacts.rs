//! `/contacts`: CRUD with enrichment, filters and fuzzy search, lead status history and
//! stats, basic lookups, and `/tags`.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use crm_client_contact::{ContactBasicInfo, ContactDetails, ContactLookup, ContactStatus};
use crm_web::{
    Action, ApiError, AppJson, AppPath, AppQuery, AuthUser, Created, FieldErrors, NoContent, Page, Resource, Scope, parse_limit,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Forward, Params, email_taken, missing_reference, on_email_conflict, parse_id, parse_list_cursor, parse_sort, publish};
use crate::AppState;
use crate::domain::{self, ContactInput, ContactPatch, ContactWrite, MAX_SEARCH_LEN, MAX_SEARCH_WORDS};
use crm_web::validate;
use crate::owners;
use crate::repo::{self, CONTACT_SORTS, ContactFilter, ListCursor, StatusChange, StatusHistoryEntry, TagCount};

/// Query of `GET /contacts` (documentation; parsed by hand for field errors).
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
    /// created_at, updated_at, first_name, last_name; `-` prefix for descending. Default `-created_at`.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `false` omits `total_count`. With `search`, it counts the ranked matches (at most 1,000).
    pub count: Option<bool>,
}

/// Event payload of `contact.converted`.
#[derive(Debug, Serialize)]
struct Converted<'a> {
    #[serde(flatten)]
    contact: ContactBasicInfo,
    from_status: &'a str,
    reason: Option<&'a str>,
}

fn contact_cursor(c: &ContactDetails, sort: (&'static str, bool)) -> ListCursor {
    let (t, ts) = match sort.0 {
        "first_name" => (Some(c.first_name.clone()), None),
        "last_name" => (Some(c.last_name.clone()), None),
        "updated_at" => (None, Some(c.updated_at)),
        _ => (None, Some(c.created_at)),
    };
    ListCursor { k: sort.0.to_owned(), desc: sort.1, t, ts, s: None, id: c.id }
}

/// Whether the caller may change this contact (`own`: owner or creator).
fn ensure_touch(user: &AuthUser, scope: Scope, c: &ContactDetails) -> Result<(), ApiError> {
    if user.can_touch_any(scope, [c.owner_id, Some(c.created_by)]) {
        Ok(())
    } else {
        Err(ApiError::forbidden("sales reps change only the contacts they own"))
    }
}

/// With `own` scope, a contact can only be given to oneself.
fn ensure_own_owner(user: &AuthUser, scope: Scope, owner_id: Option<i32>) -> Result<(), ApiError> {
    if scope == Scope::Own && owner_id != Some(user.user_id) {
        return Err(ApiError::forbidden("sales reps cannot assign contacts to someone else"));
    }
    Ok(())
}

fn validated(input: ContactInput, default_status: ContactStatus) -> Result<(ContactWrite, Option<String>), ApiError> {
    let reason = input.status_reason.clone().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    let mut errors = FieldErrors::new();
    let w = input.validate(&mut errors, default_status);
    errors.into_result()?;
    Ok((w, reason))
}

#[utoipa::path(post, path = "/api/v1/contacts", request_body = ContactInput, tag = "contacts",
    responses((status = 201, body = ContactDetails), (status = 400), (status = 403), (status = 409), (status = 422), (status = 503)))]
pub async fn create_contact(
    State(state): State<AppState>,
    user: AuthUser,
    Forward(ctx): Forward,
    AppJson(input): AppJson<ContactInput>,
) -> Result<Created<ContactDetails>, ApiError> {
    let scope = user.require(Resource::Contacts, Action::Write)?;
    let (mut w, reason) = validated(input, ContactStatus::Lead)?;
    w.owner_id = w.owner_id.or(Some(user.user_id));
    ensure_own_owner(&user, scope, w.owner_id)?;
    owners::check(state.users.as_ref(), &ctx, user.user_id, w.owner_id).await?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    if let Some(company_id) = w.company_id
        && !repo::company_exists(&tx, company_id).await?
    {
        return Err(missing_reference("company_id", "company"));
    }
    if let Some(email) = &w.email
        && repo::email_taken(&tx, email, None).await?
    {
        return Err(email_taken());
    }
    // ON CONFLICT DO NOTHING: no row back means a concurrent writer took the email.
    let contact = repo::insert_contacts(&tx, &[&w], user.user_id).await?.pop().ok_or_else(email_taken)?;
    let change = StatusChange { contact_id: contact.id, from: None, to: contact.status, reason: reason.as_deref() };
    repo::record_status_changes(&tx, &[change], user.user_id).await?;
    publish(&tx, "contact.created", &user, contact.basic()).await?;
    tx.commit().await?;
    let mut out = [contact];
    owners::enrich(state.users.as_ref(), &ctx, &mut out).await;
    let [contact] = out;
    Ok(Created(contact))
}

#[utoipa::path(get, path = "/api/v1/contacts", params(ContactListQuery), tag = "contacts",
    responses((status = 200, body = Page<ContactDetails>), (status = 400)))]
pub async fn list_contacts(
    State(state): State<AppState>,
    user: AuthUser,
    Forward(ctx): Forward,
    AppQuery(params): AppQuery<Vec<(String, String)>>,
) -> Result<AppJson<Page<ContactDetails>>, ApiError> {
    user.require(Resource::Contacts, Action::Read)?;
    let params = Params(params);
    let mut errors = FieldErrors::new();
    let status = params.one("status").map(|s| domain::status(&mut errors, Some(s), ContactStatus::Lead));
    let filter = ContactFilter {
        status,
        owner_id: params.id(&mut errors, "owner_id"),
        company_id: params.id(&mut errors, "company_id"),
        created_after: params.time(&mut errors, "created_after"),
        created_before: params.time(&mut errors, "created_before"),
        tags: super::tags(&params, &mut errors),
    };
    let search = params.one("search").map(str::trim).filter(|s| !s.is_empty());
    let mut words = Vec::new();
    if let Some(q) = search {
        words = domain::search_words(q);
        words.truncate(MAX_SEARCH_WORDS);
        if q.chars().count() > MAX_SEARCH_LEN {
            errors.add("search", "at most 200 characters");
        } else if words.is_empty() {
            errors.add("search", "needs a word of at least two letters");
        }
        if params.one("sort").is_some() {
            errors.add("sort", "search results are ranked by relevance: no sort with search");
        }
    }
    errors.into_result()?;
    let limit = parse_limit(params.one("limit"))?;

    let mut page = match search {
        Some(q) => {
            let after = parse_list_cursor(&state.cursors, params.one("cursor"), "search", true)?;
            search_page(&state, &user, q, &words, &filter, after, limit, params.count()).await?
        }
        None => {
            let sort = parse_sort(params.one("sort"), &CONTACT_SORTS, ("created_at", true))?;
            let after = parse_list_cursor(&state.cursors, params.one("cursor"), sort.0, sort.1)?;
            let mut conn = state.db.connect().await?;
            let tx = conn.tenant(&user.tenant_id).await?;
            let rows = repo::list_contacts(&tx, &filter, sort, after.as_ref(), limit).await?;
            let total = if params.count() { Some(repo::count_contacts(&tx, &filter).await?) } else { None };
            tx.commit().await?;
            Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&contact_cursor(last, sort)))
        }
    };
    owners::enrich(state.users.as_ref(), &ctx, &mut page.data).await;
    Ok(AppJson(page))
}

/// Fuzzy search: each query word is matched against the tenant's vocabulary (exact, prefix,
/// within 1-2 typos, or trigram-similar), then the contacts having a match for every word are
/// ranked by pg_trgm similarity.
#[allow(clippy::too_many_arguments)]
async fn search_page(
    state: &AppState,
    user: &AuthUser,
    query: &str,
    words: &[String],
    filter: &ContactFilter,
    after: Option<ListCursor>,
    limit: i64,
    count: bool,
) -> Result<Page<ContactDetails>, ApiError> {
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    repo::set_similarity_threshold(&tx, 0.2).await?;
    let candidates = repo::search_term_candidates(&tx, words).await?;
    let mut per_word: Vec<Vec<(String, f32)>> = vec![Vec::new(); words.len()];
    for (i, term, sim) in candidates {
        if let Some(list) = per_word.get_mut(i) {
            list.push((term, sim));
        }
    }
    let term_sets: Vec<Vec<String>> = words.iter().zip(&per_word).map(|(w, c)| domain::best_terms(w, c, 8)).collect();
    if term_sets.iter().any(Vec::is_empty) {
        tx.commit().await?;
        return Ok(Page::from_overfetch(Vec::new(), limit, count.then_some(0), |_: &ContactDetails| String::new()));
    }
    let hits = repo::search_contacts(&tx, &term_sets, &query.to_lowercase(), filter, after.as_ref(), limit, state.config.search_candidates).await?;
    tx.commit().await?;
    let total = count.then(|| hits.first().map_or(0, |h| h.total));
    let page = Page::from_overfetch(hits, limit, total, |last| {
        state.cursors.encode(&ListCursor { k: "search".into(), desc: true, t: None, ts: None, s: Some(last.score), id: last.contact.id })
    });
    Ok(Page { data: page.data.into_iter().map(|h| h.contact).collect(), pagination: page.pagination })
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts",
    responses((status = 200, body = ContactDetails), (status = 404)))]
pub async fn get_contact(
    State(state): State<AppState>,
    user: AuthUser,
    Forward(ctx): Forward,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<ContactDetails>, ApiError> {
    user.require(Resource::Contacts, Action::Read)?;
    let id = parse_id(&id, "contact")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let contact = repo::contact_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    tx.commit().await?;
    let mut out = [contact];
    owners::enrich(state.users.as_ref(), &ctx, &mut out).await;
    let [contact] = out;
    Ok(AppJson(contact))
}

/// What PUT/PATCH bring: the new owner when the body names one (validated before the
/// transaction), and how to build the full input from the current row.
async fn update(
    state: &AppState,
    user: &AuthUser,
    ctx: &crm_client_auth::CallContext,
    raw_id: &str,
    new_owner: Option<Option<i32>>,
    input: impl FnOnce(&ContactDetails) -> ContactInput,
) -> Result<ContactDetails, ApiError> {
    let scope = user.require(Resource::Contacts, Action::Write)?;
    let id = parse_id(raw_id, "contact")?;
    if let Some(owner) = new_owner {
        ensure_own_owner(user, scope, owner)?;
        owners::check(state.users.as_ref(), ctx, user.user_id, owner).await?;
    }
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let current = repo::contact_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    ensure_touch(user, scope, &current)?;
    let (w, reason) = validated(input(&current), current.status)?;
    if w.company_id != current.company_id
        && let Some(company_id) = w.company_id
        && !repo::company_exists(&tx, company_id).await?
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
        repo::record_status_changes(&tx, &[change], user.user_id).await?;
        if contact.status == ContactStatus::Customer {
            let data = Converted { contact: contact.basic(), from_status: current.status.as_str(), reason: reason.as_deref() };
            publish(&tx, "contact.converted", user, data).await?;
        }
    }
    publish(&tx, "contact.updated", user, contact.basic()).await?;
    tx.commit().await?;
    let mut out = [contact];
    owners::enrich(state.users.as_ref(), ctx, &mut out).await;
    let [contact] = out;
    Ok(contact)
}

/// Replaces the contact. An absent `owner_id` or `status` keeps the current one.
#[utoipa::path(put, path = "/api/v1/contacts/{id}", request_body = ContactInput, tag = "contacts",
    responses((status = 200, body = ContactDetails), (status = 400), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn put_contact(
    State(state): State<AppState>,
    user: AuthUser,
    Forward(ctx): Forward,
    AppPath(id): AppPath<String>,
    AppJson(input): AppJson<ContactInput>,
) -> Result<AppJson<ContactDetails>, ApiError> {
    let new_owner = input.owner_id.map(Some);
    let contact = update(&state, &user, &ctx, &id, new_owner, |current| {
        let mut input = input;
        input.owner_id = input.owner_id.or(current.owner_id);
        input
    })
    .await?;
    Ok(AppJson(contact))
}

/// Changes the given fields; `{status, status_reason}` is the lead-management transition
/// (recorded in the status history; to `customer` also publishes `contact.converted`).
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", request_body = ContactPatch, tag = "contacts",
    responses((status = 200, body = ContactDetails), (status = 400), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn patch_contact(
    State(state): State<AppState>,
    user: AuthUser,
    Forward(ctx): Forward,
    AppPath(id): AppPath<String>,
    AppJson(patch): AppJson<ContactPatch>,
) -> Result<AppJson<ContactDetails>, ApiError> {
    if patch.is_empty() {
        user.require(Resource::Contacts, Action::Write)?;
        return Err(ApiError::validation([("body", "nothing to update")]));
    }
    let new_owner = patch.owner_id;
    Ok(AppJson(update(&state, &user, &ctx, &id, new_owner, |current| patch.apply(current)).await?))
}

#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts",
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_contact(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<NoContent, ApiError> {
    let scope = user.require(Resource::Contacts, Action::Delete)?;
    let id = parse_id(&id, "contact")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let contact = repo::contact_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    ensure_touch(&user, scope, &contact)?;
    repo::delete_contact(&tx, id).await?;
    publish(&tx, "contact.deleted", &user, contact.basic()).await?;
    tx.commit().await?;
    Ok(NoContent)
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}/basic", tag = "contacts",
    responses((status = 200, body = ContactBasicInfo), (status = 404)))]
pub async fn contact_basic(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<AppJson<ContactBasicInfo>, ApiError> {
    user.require(Resource::Contacts, Action::Read)?;
    let id = parse_id(&id, "contact")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let found = repo::contacts_basic(&tx, &[id]).await?;
    tx.commit().await?;
    Ok(AppJson(found.into_iter().next().ok_or_else(|| ApiError::not_found("contact"))?))
}

/// Contacts by id; with `company_ids=` also those companies, so a caller enriching a list with
/// both (deal-service) makes one request to this service.
#[utoipa::path(get, path = "/api/v1/contacts/basic", params(super::companies::IdsQuery), tag = "contacts",
    responses((status = 200, body = ContactLookup), (status = 400)))]
pub async fn contacts_basic(State(state): State<AppState>, user: AuthUser, AppQuery(q): AppQuery<Vec<(String, String)>>) -> Result<AppJson<ContactLookup>, ApiError> {
    user.require(Resource::Contacts, Action::Read)?;
    let params = Params(q);
    let ids = validate::batch_ids("ids", params.one("ids"))?;
    let company_ids = match params.one("company_ids") {
        None => None,
        Some(raw) => {
            user.require(Resource::Companies, Action::Read)?;
            Some(validate::batch_ids("company_ids", Some(raw))?)
        }
    };
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let data = repo::contacts_basic(&tx, &ids).await?;
    let companies = match company_ids {
        Some(ids) => Some(repo::companies_basic(&tx, &ids).await?),
        None => None,
    };
    tx.commit().await?;
    Ok(AppJson(ContactLookup { data, companies }))
}

#[derive(Debug, Serialize, Deserialize)]
struct HistoryCursor {
    before: i64,
}

/// Every status change of the contact, newest first (the first entry, with
/// `from_status: null`, is the status it was created with).
#[utoipa::path(get, path = "/api/v1/contacts/{id}/status-history", tag = "contacts",
    responses((status = 200, body = Page<StatusHistoryEntry>), (status = 404)))]
pub async fn status_history(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<Vec<(String, String)>>,
) -> Result<AppJson<Page<StatusHistoryEntry>>, ApiError> {
    user.require(Resource::Contacts, Action::Read)?;
    let id = parse_id(&id, "contact")?;
    let params = Params(params);
    let limit = parse_limit(params.one("limit"))?;
    let after: Option<HistoryCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    repo::contact_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    let rows = repo::status_history(&tx, id, after.map(|c| c.before), limit).await?;
    tx.commit().await?;
    Ok(AppJson(Page::from_overfetch(rows, limit, None, |last| state.cursors.encode(&HistoryCursor { before: last.id }))))
}

/// `GET /contacts/stats`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactStats {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Current number of contacts per status (every status listed).
    pub by_status: BTreeMap<String, i64>,
    /// Changes lead/prospect -> customer within the period.
    pub conversions: i64,
    /// Contacts that became lead or prospect within the period (created so or moved there).
    pub new_leads: i64,
    /// conversions / new_leads (0 when there were none).
    pub conversion_rate: f64,
}

/// Counts by status and conversions over `[from, to)` (default: the last 30 days).
#[utoipa::path(get, path = "/api/v1/contacts/stats", tag = "contacts",
    params(("from" = Option<String>, Query, description = "RFC 3339"), ("to" = Option<String>, Query, description = "RFC 3339")),
    responses((status = 200, body = ContactStats), (status = 400)))]
pub async fn contact_stats(State(state): State<AppState>, user: AuthUser, AppQuery(params): AppQuery<Vec<(String, String)>>) -> Result<AppJson<ContactStats>, ApiError> {
    user.require(Resource::Contacts, Action::Read)?;
    let params = Params(params);
    let mut errors = FieldErrors::new();
    let to = params.time(&mut errors, "to").unwrap_or_else(Utc::now);
    let from = params.time(&mut errors, "from").unwrap_or(to - Duration::days(30));
    errors.check("from", from < to, "must be before `to`");
    errors.into_result()?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let counts = repo::count_by_status(&tx).await?;
    let (conversions, new_leads) = repo::conversions(&tx, from, to).await?;
    tx.commit().await?;
    let mut by_status: BTreeMap<String, i64> = ContactStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
    by_status.extend(counts);
    let conversion_rate = if new_leads > 0 { conversions as f64 / new_leads as f64 } else { 0.0 };
    Ok(AppJson(ContactStats { from, to, by_status, conversions, new_leads, conversion_rate }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TagList {
    pub data: Vec<TagCount>,
}

/// The tenant's tags with how many contacts and companies carry each.
#[utoipa::path(get, path = "/api/v1/tags", tag = "tags", responses((status = 200, body = TagList)))]
pub async fn list_tags(State(state): State<AppState>, user: AuthUser) -> Result<AppJson<TagList>, ApiError> {
    user.require(Resource::Contacts, Action::Read)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let data = repo::tag_counts(&tx).await?;
    tx.commit().await?;
    Ok(AppJson(TagList { data }))
}

/// Owner ids referenced by a batch (for one validation call).
pub fn owner_ids<'a>(rows: impl Iterator<Item = &'a ContactWrite>) -> BTreeSet<i32> {
    rows.filter_map(|w| w.owner_id).collect()
}
