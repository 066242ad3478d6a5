//! Duplicates and merging (issue 16, seed 002 requirement 3.5).
//!
//! * `GET /contacts/duplicates`, `GET /companies/duplicates`: candidate pairs with a score
//!   0..1 and the reasons ([`DuplicateReason`]), keyset-paginated in `(id, duplicate id)`
//!   order, or the candidates of one record (`?contact_id=` / `?company_id=`). Each record
//!   probes the indexes of contact V8 for the others (one probe per record, never every pair).
//! * `POST /contacts/{id}/merge`, `POST /companies/{id}/merge`: in ONE transaction the survivor
//!   takes the chosen values (`contact.updated` / `company.updated` with `changes`), the
//!   others go to the trash with `merged_into` = survivor (`*.trashed`), and `*.merged`
//!   ([`RecordsMerged`]) is published: deal-service and communication-service move every
//!   reference from the merged ids to the survivor when it arrives. For companies, contacts
//!   and subsidiaries move in this transaction (contact-service's own rows).
//!
//! Who may merge: merging trashes records, so it needs `delete` and `write` on the resource.
//! Contacts: admins and managers merge any; a sales rep only contacts it owns or created,
//! every one of them (the rule of its delete and write). Companies: admins and managers
//! (`companies: delete`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use crm_client_contact::subjects::{
    COMPANY_MERGED, COMPANY_TRASHED, COMPANY_UPDATED, CONTACT_CONVERTED, CONTACT_MERGED, CONTACT_TRASHED, CONTACT_UPDATED,
};
use crm_client_contact::{
    CompanyDetails, CompanyTrashed, ContactConverted, ContactDetails, ContactStatus, ContactTrashed, CustomFields, RecordsMerged,
};
use crm_events::publish;
use crm_tenant::TenantTx;
use crm_web::{Action, ApiError, Can, ETag, FieldErrors, IfMatch, Page, QueryParams, Resource, Scope, codes, parse_limit, perm};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::custom_fields::{self, Entity};
use super::{missing_reference, on_email_conflict, owners};
use crate::AppState;
use crate::domain::{AddressInput, CompanyPatch, ContactPatch, MAX_TAGS};
use crate::repo::merge::{self as repo, CompanyPair, ContactKeys, ContactPair, Locked, PairScope};
use crate::repo::{self as db, companies as company_repo, contacts as contact_repo};

/// Records merged into one survivor per request, at most.
pub const MAX_MERGE: usize = 10;
/// Records examined per page of a whole-tenant duplicates list (one index probe each): a page
/// may hold fewer than `limit` pairs, even none, and still have a next page.
pub const PAIR_WINDOW: i64 = 1000;
/// Trigram similarity of two names (folded full names of contacts, folded company names)
/// from which they are candidates (the 0.6).
pub const NAME_THRESHOLD: f32 = 0.6;

// ---------------------------------------------------------------------------------------
// Duplicates

/// Why two records may be the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateReason {
    /// Contacts: the same mailbox (case-insensitive; a "+tag" in the local part ignored).
    Email,
    /// Contacts: the same phone number (digits only, the last 9 compared; 7 digits or more).
    Phone,
    /// Names at least 0.6 similar (pg_trgm trigram similarity of the accent- and
    /// case-folded full name or company name).
    Name,
    /// Contacts with similar names at the same company (raises the name's weight).
    SameCompany,
    /// Contacts with similar names and emails at the same domain (raises the name's weight;
    /// not counted for public mail providers such as gmail.com).
    SameEmailDomain,
    /// Companies: the same site (domain, else the website's host, without `www.`).
    Domain,
}

/// A contact as a duplicate candidate shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DuplicateContact {
    pub id: i32,
    pub first_name: String,
    pub last_name: String,
    /// Empty when the contact has none.
    pub email: String,
    pub phone: String,
    pub company_id: Option<i32>,
    pub company_name: Option<String>,
    pub owner_id: Option<i32>,
}

/// One candidate pair of `GET /contacts/duplicates`: `contact` (the lower id, or the contact
/// asked for with `contact_id`) and `duplicate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactDuplicate {
    pub contact: DuplicateContact,
    pub duplicate: DuplicateContact,
    /// 0..1, three decimals: how likely the two are one person (see `reasons`).
    pub score: f64,
    /// At least one of email, phone, name; same_company / same_email_domain with name.
    pub reasons: Vec<DuplicateReason>,
    /// Trigram similarity of the two folded full names, 0..1.
    pub name_similarity: f64,
}

/// A company as a duplicate candidate shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DuplicateCompany {
    pub id: i32,
    pub name: String,
    pub domain: String,
    pub website: String,
}

/// One candidate pair of `GET /companies/duplicates`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompanyDuplicate {
    pub company: DuplicateCompany,
    pub duplicate: DuplicateCompany,
    /// 0..1, three decimals.
    pub score: f64,
    /// domain and/or name.
    pub reasons: Vec<DuplicateReason>,
    pub name_similarity: f64,
}

/// Keyset position in a duplicates list: the last pair's ids (`a` only without `?*_id=`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PairCursor {
    /// `contact_id` / `company_id` the cursor was made for (0: the whole list).
    of: i32,
    a: i32,
    b: i32,
}

/// Public mail providers: the same domain there says nothing about two people.
const PUBLIC_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
];

fn email_domain(email: &str) -> Option<String> {
    email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).filter(|d| !d.is_empty())
}

/// Probability-style combination: each signal alone gives its weight, two together more
/// than either (`1 - (1-a)(1-b)`), never above 1.
fn combine(weights: &[f64]) -> f64 {
    let score = 1.0 - weights.iter().fold(1.0, |rest, w| rest * (1.0 - w.clamp(0.0, 1.0)));
    (score * 1000.0).round() / 1000.0
}

/// Weight of a name match: 0.5 at the threshold up to 0.8 for identical names.
fn name_weight(similarity: f32) -> f64 {
    let s = f64::from(similarity.clamp(NAME_THRESHOLD, 1.0));
    0.5 + (s - f64::from(NAME_THRESHOLD)) / (1.0 - f64::from(NAME_THRESHOLD)) * 0.3
}

/// The score and reasons of a contact pair: same mailbox 0.9, same phone 0.7, similar names
/// 0.5..0.8, plus 0.15 at the same company and 0.1 with the same (non-public) email domain.
pub fn score_contacts(pair: &ContactPair) -> (f64, Vec<DuplicateReason>) {
    let mut reasons = Vec::new();
    let mut weights = Vec::new();
    if pair.same_email {
        reasons.push(DuplicateReason::Email);
        weights.push(0.9);
    }
    if pair.same_phone {
        reasons.push(DuplicateReason::Phone);
        weights.push(0.7);
    }
    if pair.name_similarity >= NAME_THRESHOLD {
        reasons.push(DuplicateReason::Name);
        let mut w = name_weight(pair.name_similarity);
        if pair.a.company_id.is_some() && pair.a.company_id == pair.b.company_id {
            reasons.push(DuplicateReason::SameCompany);
            w += 0.15;
        }
        let (da, db) = (email_domain(&pair.a.email), email_domain(&pair.b.email));
        if !pair.same_email && da.is_some() && da == db && !da.as_deref().is_some_and(|d| PUBLIC_MAIL_DOMAINS.contains(&d)) {
            reasons.push(DuplicateReason::SameEmailDomain);
            w += 0.1;
        }
        weights.push(w.min(0.95));
    }
    (combine(&weights), reasons)
}

/// The score and reasons of a company pair: same site 0.85, similar names 0.5..0.8.
pub fn score_companies(pair: &CompanyPair) -> (f64, Vec<DuplicateReason>) {
    let mut reasons = Vec::new();
    let mut weights = Vec::new();
    if pair.same_site {
        reasons.push(DuplicateReason::Domain);
        weights.push(0.85);
    }
    if pair.name_similarity >= NAME_THRESHOLD {
        reasons.push(DuplicateReason::Name);
        weights.push(name_weight(pair.name_similarity));
    }
    (combine(&weights), reasons)
}

fn rounded(v: f32) -> f64 {
    (f64::from(v) * 1000.0).round() / 1000.0
}

fn duplicate_contact(k: ContactKeys) -> DuplicateContact {
    DuplicateContact {
        id: k.id,
        first_name: k.first_name,
        last_name: k.last_name,
        email: k.email,
        phone: k.phone,
        company_id: k.company_id,
        company_name: k.company_name,
        owner_id: k.owner_id,
    }
}

/// `?<of_param>=` (a record to get the candidates of), `?limit=`, `?cursor=`; the scope.
fn pair_scope(state: &AppState, params: &QueryParams, of_param: &str) -> Result<(PairScope, i64, i32), ApiError> {
    let mut errors = FieldErrors::new();
    let of = params.id(&mut errors, of_param);
    if params.one("sort").is_some_and(|s| !s.trim().is_empty()) {
        errors.add("sort", "this list has one order: by record id, then duplicate id");
    }
    errors.into_result()?;
    let limit = parse_limit(params.one("limit"))?;
    let cursor: Option<PairCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    let of_id = of.unwrap_or(0);
    if cursor.as_ref().is_some_and(|c| c.of != of_id) {
        return Err(ApiError::new(axum::http::StatusCode::BAD_REQUEST, codes::INVALID_CURSOR, format!("the cursor belongs to another {of_param}")));
    }
    let scope = match of {
        Some(id) => PairScope::Of { id, after: cursor.map(|c| c.b) },
        None => PairScope::All { after: cursor.map(|c| (c.a, c.b)) },
    };
    Ok((scope, limit, of_id))
}

/// A page that is not full but stopped at the end of its window of anchors continues there:
/// `has_next` with a cursor past every pair of the anchors before `end`.
fn continue_after_window<T>(state: &AppState, mut page: Page<T>, of: i32, end: Option<i32>) -> Page<T> {
    if let (false, Some(end)) = (page.pagination.has_next, end) {
        page.pagination.has_next = true;
        page.pagination.next_cursor = Some(state.cursors.encode(&PairCursor { of, a: end - 1, b: i32::MAX }));
    }
    page
}

/// `GET /contacts/duplicates`.
pub async fn contact_duplicates(state: &AppState, can: &Can<perm::ContactsRead>, params: &QueryParams) -> Result<Page<ContactDuplicate>, ApiError> {
    let (scope, limit, of) = pair_scope(state, params, "contact_id")?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    if let PairScope::Of { id, .. } = scope
        && !repo::live_contact_exists(&tx, id).await?
    {
        return Err(ApiError::not_found("contact"));
    }
    db::set_similarity_threshold(&tx, NAME_THRESHOLD).await?;
    let (pairs, end) = repo::contact_pairs(&tx, scope, limit, PAIR_WINDOW).await?;
    tx.commit().await?;
    let rows: Vec<ContactDuplicate> = pairs
        .into_iter()
        .map(|p| {
            let (score, reasons) = score_contacts(&p);
            ContactDuplicate { score, reasons, name_similarity: rounded(p.name_similarity), contact: duplicate_contact(p.a), duplicate: duplicate_contact(p.b) }
        })
        .collect();
    let page = Page::from_overfetch(rows, limit, None, |last| state.cursors.encode(&PairCursor { of, a: last.contact.id, b: last.duplicate.id }));
    Ok(continue_after_window(state, page, of, end))
}

/// `GET /companies/duplicates`.
pub async fn company_duplicates(state: &AppState, can: &Can<perm::CompaniesRead>, params: &QueryParams) -> Result<Page<CompanyDuplicate>, ApiError> {
    let (scope, limit, of) = pair_scope(state, params, "company_id")?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    if let PairScope::Of { id, .. } = scope
        && !repo::live_company_exists(&tx, id).await?
    {
        return Err(ApiError::not_found("company"));
    }
    db::set_similarity_threshold(&tx, NAME_THRESHOLD).await?;
    let (pairs, end) = repo::company_pairs(&tx, scope, limit, PAIR_WINDOW).await?;
    tx.commit().await?;
    let company = |k: repo::CompanyKeys| DuplicateCompany { id: k.id, name: k.name, domain: k.domain, website: k.website };
    let rows: Vec<CompanyDuplicate> = pairs
        .into_iter()
        .map(|p| {
            let (score, reasons) = score_companies(&p);
            CompanyDuplicate { score, reasons, name_similarity: rounded(p.name_similarity), company: company(p.a), duplicate: company(p.b) }
        })
        .collect();
    let page = Page::from_overfetch(rows, limit, None, |last| state.cursors.encode(&PairCursor { of, a: last.company.id, b: last.duplicate.id }));
    Ok(continue_after_window(state, page, of, end))
}

// ---------------------------------------------------------------------------------------
// Merge

/// Body of `POST /contacts/{id}/merge` and `POST /companies/{id}/merge` (`{id}` survives).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInput {
    /// The records merged into the survivor: 1 to 10 distinct ids, not the survivor.
    pub from: Vec<i32>,
    /// Field name -> id of the record (the survivor or one of `from`) whose value the
    /// survivor takes. Contacts: first_name, last_name, email, phone, job_title, company_id,
    /// owner_id, status, source, address, notes. Companies: name, domain, industry,
    /// size_category, parent_company_id, address, phone, website. Both: `custom_fields.<key>`
    /// for one custom field. A field not named keeps the survivor's value, or when the
    /// survivor has none the first non-empty one in `from` order. Tags are always united.
    #[serde(default)]
    pub fields: BTreeMap<String, i32>,
}

const CONTACT_FIELDS: &[&str] =
    &["first_name", "last_name", "email", "phone", "job_title", "company_id", "owner_id", "status", "source", "address", "notes"];
const COMPANY_FIELDS: &[&str] = &["name", "domain", "industry", "size_category", "parent_company_id", "address", "phone", "website"];

/// Checks `from` and `fields` (400 naming the field): the merged ids in the given order.
fn check_input(survivor: i32, input: &MergeInput, fields: &[&str]) -> Result<Vec<i32>, ApiError> {
    let mut errors = FieldErrors::new();
    if input.from.is_empty() {
        errors.add("from", "at least one record to merge into the survivor");
    } else if input.from.len() > MAX_MERGE {
        errors.add("from", format!("at most {MAX_MERGE} records per merge"));
    } else if input.from.contains(&survivor) {
        errors.add("from", "must not contain the survivor (the record in the path)");
    } else if input.from.iter().collect::<BTreeSet<_>>().len() != input.from.len() {
        errors.add("from", "names a record twice");
    }
    for (key, id) in &input.fields {
        let field = format!("fields.{key}");
        let known = fields.contains(&key.as_str()) || key.strip_prefix("custom_fields.").is_some_and(|k| !k.is_empty());
        if !known {
            errors.add(&field, format!("unknown field; one of {} or custom_fields.<key>", fields.join(", ")));
        } else if *id != survivor && !input.from.contains(id) {
            errors.add(&field, "must be the id of the survivor or of a record in `from`");
        }
    }
    errors.into_result()?;
    Ok(input.from.clone())
}

/// The records locked, checked: 404 for an unknown or trashed id, 409 for one merged
/// already. Returns them in `[survivor, from...]` order.
fn check_locked<T: Clone>(what: &str, survivor: i32, from: &[i32], locked: Vec<Locked<T>>, id_of: impl Fn(&T) -> i32) -> Result<Vec<T>, ApiError> {
    let by_id: BTreeMap<i32, Locked<T>> = locked.into_iter().map(|l| (id_of(&l.record), l)).collect();
    let mut out = Vec::with_capacity(from.len() + 1);
    for (i, id) in std::iter::once(&survivor).chain(from).enumerate() {
        let field = if i == 0 { "id".to_owned() } else { format!("from[{}]", i - 1) };
        let Some(l) = by_id.get(id) else {
            return Err(ApiError::not_found(what).with_details(serde_json::json!({"fields": {field: format!("no such {what}")}})));
        };
        if let Some(into) = l.merged_into {
            return Err(ApiError::conflict(codes::CONFLICT, format!("{what} {id} was already merged into {what} {into}"))
                .with_details(serde_json::json!({"fields": {field: format!("already merged into {into}")}, "merged_into": into})));
        }
        if l.in_trash {
            return Err(ApiError::not_found(what).with_details(serde_json::json!({"fields": {field: format!("{what} {id} is in the trash")}})));
        }
        out.push(l.record.clone());
    }
    Ok(out)
}

/// The record whose value a field takes: the chosen one, else the survivor when `present`
/// says it has one, else the first in `from` order that has one (else the survivor).
fn pick<'a, T>(records: &'a [T], id_of: impl Fn(&T) -> i32, choice: Option<i32>, present: impl Fn(&T) -> bool) -> &'a T {
    if let Some(id) = choice
        && let Some(r) = records.iter().find(|r| id_of(r) == id)
    {
        return r;
    }
    records.iter().find(|r| present(r)).unwrap_or(&records[0])
}

/// Custom fields: per key, the chosen record's value (`custom_fields.<key>`), else the
/// survivor's, else the first in `from` order that has it (absent or `null` count as none).
fn merged_custom_fields(all: &[&CustomFields], ids: &[i32], fields: &BTreeMap<String, i32>) -> CustomFields {
    let mut out = CustomFields::new();
    let keys: BTreeSet<&String> = all.iter().flat_map(|cf| cf.keys()).collect();
    for key in keys {
        let chosen = fields.get(&format!("custom_fields.{key}")).and_then(|id| ids.iter().position(|i| i == id));
        let value = match chosen {
            Some(i) => all[i].get(key).cloned(),
            None => all.iter().filter_map(|cf| cf.get(key)).find(|v| !v.is_null()).cloned(),
        };
        if let Some(v) = value.filter(|v| !v.is_null()) {
            out.insert(key.clone(), v);
        }
    }
    out
}

/// Tags of all records, united (lowercase, sorted, deduplicated); 400 beyond the limit.
fn united_tags<'a>(all: impl Iterator<Item = &'a Vec<String>>) -> Result<Vec<String>, ApiError> {
    let tags: BTreeSet<String> = all.flatten().map(|t| t.to_lowercase()).collect();
    if tags.len() > MAX_TAGS {
        return Err(ApiError::validation([("tags", format!("the records have {} tags together, at most {MAX_TAGS}: remove some first", tags.len()))]));
    }
    Ok(tags.into_iter().collect())
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

fn address_input(a: &crm_client_contact::Address) -> AddressInput {
    AddressInput { street: non_empty(&a.street), city: non_empty(&a.city), state: non_empty(&a.state), country: non_empty(&a.country), postal_code: non_empty(&a.postal_code) }
}

fn has_address(a: &crm_client_contact::Address) -> bool {
    [&a.street, &a.city, &a.state, &a.country, &a.postal_code].iter().any(|p| !p.is_empty())
}

/// The survivor's new values as a PATCH of it.
fn contact_patch(records: &[ContactDetails], fields: &BTreeMap<String, i32>) -> Result<ContactPatch, ApiError> {
    let id = |c: &ContactDetails| c.id;
    let f = |name: &str| fields.get(name).copied();
    let text = |name: &str, get: fn(&ContactDetails) -> &String| {
        let c = pick(records, id, f(name), |c| !get(c).is_empty());
        non_empty(get(c))
    };
    let ids: Vec<i32> = records.iter().map(|c| c.id).collect();
    let all_cf: Vec<&CustomFields> = records.iter().map(|c| &c.custom_fields).collect();
    let first = pick(records, id, f("first_name"), |c| !c.first_name.is_empty());
    let last = pick(records, id, f("last_name"), |c| !c.last_name.is_empty());
    Ok(ContactPatch {
        first_name: Some(first.first_name.clone()),
        last_name: Some(last.last_name.clone()),
        email: Some(text("email", |c| &c.email)),
        phone: Some(text("phone", |c| &c.phone)),
        job_title: Some(text("job_title", |c| &c.job_title)),
        company_id: Some(pick(records, id, f("company_id"), |c| c.company_id.is_some()).company_id),
        owner_id: Some(pick(records, id, f("owner_id"), |c| c.owner_id.is_some()).owner_id),
        status: Some(pick(records, id, f("status"), |_| true).status.as_str().to_owned()),
        status_reason: Some("merge".into()),
        source: Some(text("source", |c| &c.source)),
        address: Some(Some(address_input(&pick(records, id, f("address"), |c| has_address(&c.address)).address))),
        custom_fields: Some(Some(serde_json::Value::Object(merged_custom_fields(&all_cf, &ids, fields)))),
        notes: Some(text("notes", |c| &c.notes)),
        tags: Some(Some(united_tags(records.iter().map(|c| &c.tags))?)),
    })
}

/// Fields left out of `contact.updated`'s `changes` (as for a PATCH).
const DERIVED_CONTACT_FIELDS: &[&str] = &["updated_at", "created_at", "created_by", "owner_name", "company_name"];

/// `POST /contacts/{id}/merge`: the merged survivor (see the module).
pub async fn merge_contacts(state: &AppState, can: &Can<perm::ContactsDelete>, survivor: i32, if_match: &IfMatch, input: MergeInput) -> Result<ContactDetails, ApiError> {
    let write_scope = can.require(Resource::Contacts, Action::Write)?;
    let from = check_input(survivor, &input, CONTACT_FIELDS)?;
    let all_ids: Vec<i32> = std::iter::once(survivor).chain(from.iter().copied()).collect();

    let tx = state.db.tenant(&can.tenant_id).await?;
    let locked = repo::lock_contacts(&tx, &all_ids).await?;
    let records = check_locked("contact", survivor, &from, locked, |c: &ContactDetails| c.id)?;
    if can.scope != Scope::All || write_scope != Scope::All {
        for c in &records {
            if !can.reaches([c.owner_id, Some(c.created_by)]) {
                return Err(ApiError::forbidden(format!("sales reps merge only contacts they own or created (not contact {})", c.id)));
            }
        }
    }
    let current = records[0].clone();
    if_match.check(&ETag::of(current.updated_at))?;
    let patch = contact_patch(&records, &input.fields)?;
    if can.scope == Scope::Own && patch.owner_id.flatten().is_some_and(|o| o != can.user_id) && patch.owner_id.flatten() != current.owner_id {
        return Err(ApiError::forbidden("sales reps cannot assign contacts to someone else"));
    }
    let mut errors = FieldErrors::new();
    let mut w = patch.apply(&current).validate(&mut errors, current.status);
    errors.into_result()?;
    custom_fields::validate_write(&tx, Entity::Contact, &mut w.custom_fields).await?;
    if w.company_id != current.company_id
        && let Some(company_id) = w.company_id
        && !company_repo::company_exists(&tx, company_id).await?
    {
        return Err(missing_reference("company_id", "company"));
    }

    // The merged contacts leave first: the survivor may take one's email (unique among
    // live contacts only).
    let now = Utc::now();
    repo::trash_merged_contacts(&tx, &from, survivor, can.user_id, now).await?;
    for c in &records[1..] {
        let mut data = serde_json::to_value(ContactTrashed { contact: c.basic(), deleted_by: Some(can.user_id), deleted_at: now }).map_err(ApiError::internal)?;
        data["merged_into"] = survivor.into();
        publish(&tx, Some(can.user_id), CONTACT_TRASHED, data).await?;
    }
    let contact = contact_repo::update_contacts(&tx, &[(survivor, &w)]).await.map_err(on_email_conflict)?.pop().ok_or_else(|| ApiError::not_found("contact"))?;
    if contact.status != current.status {
        let change = contact_repo::StatusChange { contact_id: survivor, from: Some(current.status), to: contact.status, reason: Some("merge") };
        contact_repo::record_status_changes(&tx, &[change], can.user_id).await?;
        if contact.status == ContactStatus::Customer {
            let data = ContactConverted { contact: contact.basic(), from_status: current.status.as_str().to_owned(), reason: Some("merge".into()) };
            publish(&tx, Some(can.user_id), CONTACT_CONVERTED, data).await?;
        }
    }
    // Before contact.updated: its score consumer then counts the merged contacts' signals.
    repo::move_contact_signals(&tx, survivor, &from).await?;
    let mut data = serde_json::to_value(contact.basic()).map_err(ApiError::internal)?;
    data["changes"] = crm_events::changes(&current, &contact, DERIVED_CONTACT_FIELDS).map_err(ApiError::internal)?;
    publish(&tx, Some(can.user_id), CONTACT_UPDATED, data).await?;
    let mut merged_ids = from.clone();
    merged_ids.sort_unstable();
    publish(&tx, Some(can.user_id), CONTACT_MERGED, RecordsMerged { id: survivor, survivor_id: survivor, merged_ids, merged_by: can.user_id }).await?;
    tx.commit().await?;

    let mut out = [contact];
    owners::enrich(state.users.as_ref(), &can.ctx, &mut out).await;
    let [contact] = out;
    Ok(contact)
}

/// The survivor's new values as a PATCH of it.
fn company_patch(records: &[CompanyDetails], fields: &BTreeMap<String, i32>) -> Result<CompanyPatch, ApiError> {
    let id = |c: &CompanyDetails| c.id;
    let f = |name: &str| fields.get(name).copied();
    let text = |name: &str, get: fn(&CompanyDetails) -> &String| {
        let c = pick(records, id, f(name), |c| !get(c).is_empty());
        non_empty(get(c))
    };
    let ids: Vec<i32> = records.iter().map(|c| c.id).collect();
    let all_cf: Vec<&CustomFields> = records.iter().map(|c| &c.custom_fields).collect();
    // A parent among the merged records (or the survivor) would be a cycle: none then.
    let parent = pick(records, id, f("parent_company_id"), |c| c.parent_company_id.is_some()).parent_company_id.filter(|p| !ids.contains(p));
    Ok(CompanyPatch {
        name: Some(pick(records, id, f("name"), |c| !c.name.is_empty()).name.clone()),
        domain: Some(text("domain", |c| &c.domain)),
        industry: Some(text("industry", |c| &c.industry)),
        size_category: Some(text("size_category", |c| &c.size_category)),
        parent_company_id: Some(parent),
        address: Some(Some(address_input(&pick(records, id, f("address"), |c| has_address(&c.address)).address))),
        phone: Some(text("phone", |c| &c.phone)),
        website: Some(text("website", |c| &c.website)),
        custom_fields: Some(Some(serde_json::Value::Object(merged_custom_fields(&all_cf, &ids, fields)))),
        tags: Some(Some(united_tags(records.iter().map(|c| &c.tags))?)),
    })
}

/// 422 when the chosen parent does not exist or is a descendant of the survivor.
async fn check_parent(tx: &TenantTx, id: i32, parent: Option<i32>) -> Result<(), ApiError> {
    let Some(parent) = parent else { return Ok(()) };
    if !company_repo::company_exists(tx, parent).await? {
        return Err(missing_reference("parent_company_id", "company"));
    }
    company_repo::lock_company_tree(tx).await?;
    if company_repo::is_ancestor_or_self(tx, id, parent).await? {
        return Err(ApiError::unprocessable(codes::COMPANY_CYCLE, "a company cannot be its own ancestor")
            .with_details(serde_json::json!({"fields": {"fields.parent_company_id": "would create a cycle"}})));
    }
    Ok(())
}

/// `POST /companies/{id}/merge`: the merged survivor; contacts and subsidiaries of the merged
/// companies move to it in the same transaction (`contact.updated` per moved contact).
pub async fn merge_companies(state: &AppState, can: &Can<perm::CompaniesDelete>, survivor: i32, if_match: &IfMatch, input: MergeInput) -> Result<CompanyDetails, ApiError> {
    can.require(Resource::Companies, Action::Write)?;
    let from = check_input(survivor, &input, COMPANY_FIELDS)?;
    let all_ids: Vec<i32> = std::iter::once(survivor).chain(from.iter().copied()).collect();

    let tx = state.db.tenant(&can.tenant_id).await?;
    let locked = repo::lock_companies(&tx, &all_ids).await?;
    let records = check_locked("company", survivor, &from, locked, |c: &CompanyDetails| c.id)?;
    let current = records[0].clone();
    if_match.check(&ETag::of(current.updated_at))?;
    let patch = company_patch(&records, &input.fields)?;
    let mut errors = FieldErrors::new();
    let mut w = patch.apply(&current).validate(&mut errors);
    errors.into_result()?;
    custom_fields::validate_write(&tx, Entity::Company, &mut w.custom_fields).await?;

    let now = Utc::now();
    repo::trash_merged_companies(&tx, &from, survivor, can.user_id, now).await?;
    for c in &records[1..] {
        let mut data = serde_json::to_value(CompanyTrashed { company: c.basic(), deleted_by: Some(can.user_id), deleted_at: now }).map_err(ApiError::internal)?;
        data["merged_into"] = survivor.into();
        publish(&tx, Some(can.user_id), COMPANY_TRASHED, data).await?;
    }
    repo::move_subsidiaries(&tx, survivor, &from).await?;
    if w.parent_company_id != current.parent_company_id {
        check_parent(&tx, survivor, w.parent_company_id).await?;
    }
    let company = company_repo::update_company(&tx, survivor, &w).await?;
    if company.name != current.name {
        contact_repo::reword_company_contacts(&tx, survivor, &company.name).await?;
    }
    // The merged companies' contacts: the survivor's now (trashed ones too, references kept).
    let moved = repo::move_company_contacts(&tx, survivor, &company.name, &from).await?;
    if !moved.is_empty() {
        let ids: Vec<i32> = moved.iter().map(|m| m.0).collect();
        let basics = contact_repo::contacts_basic(&tx, &ids).await?;
        for (basic, (_, old, _)) in basics.iter().zip(&moved) {
            let mut data = serde_json::to_value(basic).map_err(ApiError::internal)?;
            data["changes"] = serde_json::json!({"company_id": {"old": old, "new": survivor}});
            publish(&tx, Some(can.user_id), CONTACT_UPDATED, data).await?;
        }
    }
    let mut data = serde_json::to_value(company.basic()).map_err(ApiError::internal)?;
    data["changes"] = crm_events::changes(&current, &company, &["updated_at", "created_at", "created_by", "owner_name", "parent_company_name"])
        .map_err(ApiError::internal)?;
    publish(&tx, Some(can.user_id), COMPANY_UPDATED, data).await?;
    let mut merged_ids = from.clone();
    merged_ids.sort_unstable();
    publish(&tx, Some(can.user_id), COMPANY_MERGED, RecordsMerged { id: survivor, survivor_id: survivor, merged_ids, merged_by: can.user_id }).await?;
    tx.commit().await?;
    Ok(company)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(id: i32, email: &str, company: Option<i32>) -> ContactKeys {
        ContactKeys {
            id,
            first_name: "A".into(),
            last_name: "B".into(),
            email: email.into(),
            phone: String::new(),
            company_id: company,
            company_name: None,
            owner_id: None,
        }
    }

    #[test]
    fn scores_rise_with_each_signal_and_stay_within_0_1() {
        let pair = |same_email, same_phone, sim, a: ContactKeys, b: ContactKeys| ContactPair { a, b, same_email, same_phone, name_similarity: sim };
        let email_only = score_contacts(&pair(true, false, 0.2, keys(1, "a@x.com", None), keys(2, "a+1@x.com", None)));
        assert_eq!(email_only, (0.9, vec![DuplicateReason::Email]));
        let name_only = score_contacts(&pair(false, false, 0.6, keys(1, "", None), keys(2, "", None)));
        assert_eq!(name_only, (0.5, vec![DuplicateReason::Name]));
        let name_company = score_contacts(&pair(false, false, 0.6, keys(1, "a@acme.io", Some(3)), keys(2, "b@acme.io", Some(3))));
        assert_eq!(name_company.1, vec![DuplicateReason::Name, DuplicateReason::SameCompany, DuplicateReason::SameEmailDomain]);
        assert!(name_company.0 > name_only.0);
        let gmail = score_contacts(&pair(false, false, 0.6, keys(1, "a@gmail.com", None), keys(2, "b@gmail.com", None)));
        assert_eq!(gmail.1, vec![DuplicateReason::Name]);
        let all = score_contacts(&pair(true, true, 1.0, keys(1, "a@x.com", Some(1)), keys(2, "a@x.com", Some(1))));
        assert!(all.0 > email_only.0 && all.0 <= 1.0, "{all:?}");
    }

    #[test]
    fn input_is_checked_field_by_field() {
        let input = |from: Vec<i32>, fields: &[(&str, i32)]| MergeInput { from, fields: fields.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect() };
        assert!(check_input(1, &input(vec![2, 3], &[("email", 3), ("custom_fields.tier", 1)]), CONTACT_FIELDS).is_ok());
        for bad in [
            input(vec![], &[]),
            input(vec![1, 2], &[]),
            input(vec![2, 2], &[]),
            input((2..=12).collect(), &[]),
            input(vec![2], &[("email", 9)]),
            input(vec![2], &[("password", 2)]),
        ] {
            assert_eq!(check_input(1, &bad, CONTACT_FIELDS).unwrap_err().status(), axum::http::StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
