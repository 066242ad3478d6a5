//! `contacts`: CRUD (batched for the import), filters, fuzzy search, export pages, the
//! status history and its stats, tags.

use chrono::{DateTime, Utc};
use crm_client_contact::{Address, ContactBasicInfo, ContactDetails, ContactStatus, CustomFields, MarketingConsent};
use crm_tenant::TenantTx;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use super::{DbResult, ListCursor, Query, keyset, text, where_clause};
use crate::domain::{ContactWrite, StatusHistoryEntry, TagCount};

const CONTACT_FIELDS: [&str; 24] = [
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "job_title",
    "company_id",
    "owner_id",
    "status",
    "source",
    "street_address",
    "city",
    "state",
    "country",
    "postal_code",
    "custom_fields",
    "notes",
    "tags",
    "created_at",
    "created_by",
    "updated_at",
    "marketing_consent",
    "last_contacted_at",
    "score",
];

/// Number of contact columns before the company name in [`contact_cols`].
pub(crate) const CONTACT_COLUMNS: usize = CONTACT_FIELDS.len();

/// The contact columns of `alias`, then the company name expression (25 columns).
pub(crate) fn contact_cols(alias: &str, company_name: &str) -> String {
    let mut cols: Vec<String> = CONTACT_FIELDS.iter().map(|f| format!("{alias}.{f}")).collect();
    cols.push(company_name.to_owned());
    cols.join(", ")
}

/// A trashed company is not joined: its name is hidden like the company (issue 16).
pub(crate) const CONTACT_FROM: &str = "contacts c LEFT JOIN companies co ON co.id = c.company_id AND co.deleted_at IS NULL";

/// The CHECK constraint admits only the three values.
fn consent(row: &Row, idx: usize) -> MarketingConsent {
    MarketingConsent::parse(row.get(idx)).unwrap_or_default()
}

pub(crate) fn contact_from(row: &Row) -> ContactDetails {
    let status: String = row.get(8);
    ContactDetails {
        id: row.get(0),
        first_name: row.get(1),
        last_name: row.get(2),
        email: text(row, 3),
        phone: text(row, 4),
        job_title: text(row, 5),
        company_id: row.get(6),
        owner_id: row.get(7),
        // The CHECK constraint admits only the five statuses.
        status: ContactStatus::parse(&status).unwrap_or(ContactStatus::Lead),
        source: text(row, 9),
        address: Address {
            street: text(row, 10),
            city: text(row, 11),
            state: text(row, 12),
            country: text(row, 13),
            postal_code: text(row, 14),
        },
        custom_fields: row.get::<_, Json<CustomFields>>(15).0,
        notes: text(row, 16),
        tags: row.get(17),
        created_at: row.get(18),
        created_by: row.get(19),
        updated_at: row.get(20),
        company_name: row.get(CONTACT_COLUMNS),
        owner_name: None,
        marketing_consent: consent(row, 21),
        last_contacted_at: row.get(22),
        score: row.get(23),
    }
}

/// Column arrays of a batch of contacts, for `unnest`.
struct ContactArrays<'a> {
    first_name: Vec<&'a str>,
    last_name: Vec<&'a str>,
    email: Vec<Option<&'a str>>,
    phone: Vec<Option<&'a str>>,
    job_title: Vec<Option<&'a str>>,
    company_id: Vec<Option<i32>>,
    owner_id: Vec<Option<i32>>,
    status: Vec<&'static str>,
    source: Vec<Option<&'a str>>,
    street: Vec<Option<&'a str>>,
    city: Vec<Option<&'a str>>,
    state: Vec<Option<&'a str>>,
    country: Vec<Option<&'a str>>,
    postal_code: Vec<Option<&'a str>>,
    custom_fields: Vec<Json<&'a CustomFields>>,
    notes: Vec<Option<&'a str>>,
    /// Comma-joined (tags never contain commas).
    tags: Vec<String>,
}

impl<'a> ContactArrays<'a> {
    fn new<'b>(rows: impl Iterator<Item = &'a ContactWrite> + 'b) -> Self {
        let mut a = Self {
            first_name: vec![],
            last_name: vec![],
            email: vec![],
            phone: vec![],
            job_title: vec![],
            company_id: vec![],
            owner_id: vec![],
            status: vec![],
            source: vec![],
            street: vec![],
            city: vec![],
            state: vec![],
            country: vec![],
            postal_code: vec![],
            custom_fields: vec![],
            notes: vec![],
            tags: vec![],
        };
        for w in rows {
            a.first_name.push(&w.first_name);
            a.last_name.push(&w.last_name);
            a.email.push(w.email.as_deref());
            a.phone.push(w.phone.as_deref());
            a.job_title.push(w.job_title.as_deref());
            a.company_id.push(w.company_id);
            a.owner_id.push(w.owner_id);
            a.status.push(w.status.as_str());
            a.source.push(w.source.as_deref());
            a.street.push(w.address.street.as_deref());
            a.city.push(w.address.city.as_deref());
            a.state.push(w.address.state.as_deref());
            a.country.push(w.address.country.as_deref());
            a.postal_code.push(w.address.postal_code.as_deref());
            a.custom_fields.push(Json(&w.custom_fields));
            a.notes.push(w.notes.as_deref());
            a.tags.push(w.tags.join(","));
        }
        a
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 17] {
        [
            &self.first_name,
            &self.last_name,
            &self.email,
            &self.phone,
            &self.job_title,
            &self.company_id,
            &self.owner_id,
            &self.status,
            &self.source,
            &self.street,
            &self.city,
            &self.state,
            &self.country,
            &self.postal_code,
            &self.custom_fields,
            &self.notes,
            &self.tags,
        ]
    }
}

const UNNEST_ARGS: &str = "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::int4[], \
     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::text[], $17::text[]";
const UNNEST_NAMES: &str = "first_name, last_name, email, phone, job_title, company_id, owner_id, status, source, street, \
     city, state, country, postal_code, custom_fields, notes, tags";

/// A contact's search words, computed in the statement that writes the contact (the same
/// function the search tokenizes queries with): first and last name, email and the name of
/// its company; `u` is the alias of the row being written, `u.company_name` read beforehand
/// ([`company_names_of`]). (Kept by request code, not a trigger: Citus refuses triggers on
/// distributed tables. The company's name is a parameter rather than a subquery so that
/// the insert's SELECT reads no table: Citus then evaluates it, and the id sequence, on the
/// coordinator; pushed down to a worker an INTEGER id sequence cannot be used.)
const SEARCH_WORDS_OF_U: &str = "contact_search_words(u.first_name, u.last_name, u.email, u.company_name)";

/// The names of the companies the rows refer to, in row order (`None` without a company).
async fn company_names_of(tx: &TenantTx, company_ids: &[Option<i32>]) -> DbResult<Vec<Option<String>>> {
    let mut ids: Vec<i32> = company_ids.iter().flatten().copied().collect();
    if ids.is_empty() {
        return Ok(vec![None; company_ids.len()]);
    }
    ids.sort_unstable();
    ids.dedup();
    let stmt = tx.prepare_cached("SELECT id, name FROM companies WHERE id = ANY($1) AND deleted_at IS NULL").await?;
    let names: std::collections::HashMap<i32, String> =
        tx.query(&stmt, &[&ids]).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(company_ids.iter().map(|id| id.and_then(|id| names.get(&id).cloned())).collect())
}

/// Adds the search words of the given contacts to the tenant's vocabulary
/// (`contact_search_terms`), in sorted order so that concurrent writers take the term locks
/// in the same order (no deadlock). Part of every write that sets `search_words`.
async fn collect_search_terms(tx: &TenantTx, contact_ids: &[i32]) -> DbResult<()> {
    if contact_ids.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO contact_search_terms (term)
             SELECT DISTINCT w FROM contacts, unnest(search_words) AS w WHERE id = ANY($1) ORDER BY w
             ON CONFLICT DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&contact_ids]).await?;
    Ok(())
}

/// Re-words the contacts of company `company_id` after it was renamed to `name` and adds
/// the new words to the vocabulary.
pub async fn reword_company_contacts(tx: &TenantTx, company_id: i32, name: &str) -> DbResult<()> {
    let stmt = tx
        .prepare_cached(
            "UPDATE contacts SET search_words = contact_search_words(first_name, last_name, email, $2)
             WHERE company_id = $1 RETURNING id",
        )
        .await?;
    let ids: Vec<i32> = tx.query(&stmt, &[&company_id, &name]).await?.iter().map(|r| r.get(0)).collect();
    collect_search_terms(tx, &ids).await
}

/// Before company `company_id` is deleted: its contacts lose its name from their search words
/// (the foreign key then sets their `company_id` to NULL). No new word can appear.
pub async fn unword_company_contacts(tx: &TenantTx, company_id: i32) -> DbResult<()> {
    let stmt = tx
        .prepare_cached(
            "UPDATE contacts SET search_words = contact_search_words(first_name, last_name, email, NULL)
             WHERE company_id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&company_id]).await?;
    Ok(())
}

/// Inserts contacts in one statement (with their search words; the vocabulary follows in a
/// second). A contact whose email (case-insensitively) already exists is skipped, not an
/// error: compare the returned rows with the input.
pub async fn insert_contacts(tx: &TenantTx, rows: &[&ContactWrite], created_by: i32) -> DbResult<Vec<ContactDetails>> {
    let sql = format!(
        "WITH c AS (
             INSERT INTO contacts (first_name, last_name, email, phone, job_title, company_id, owner_id, status, source,
                 street_address, city, state, country, postal_code, custom_fields, notes, tags, created_by, search_words)
             SELECT u.first_name, u.last_name, u.email, u.phone, u.job_title, u.company_id, u.owner_id, u.status, u.source,
                 u.street, u.city, u.state, u.country, u.postal_code, u.custom_fields, u.notes,
                 coalesce(string_to_array(nullif(u.tags, ''), ','), '{{}}'), $18, {SEARCH_WORDS_OF_U}
             FROM unnest({UNNEST_ARGS}, $19::text[]) AS u({UNNEST_NAMES}, company_name)
             ON CONFLICT ((lower(email))) WHERE email IS NOT NULL AND deleted_at IS NULL DO NOTHING
             RETURNING {fields})
         SELECT {cols} FROM c LEFT JOIN companies co ON co.id = c.company_id AND co.deleted_at IS NULL ORDER BY c.id",
        fields = CONTACT_FIELDS.join(", "),
        cols = contact_cols("c", "co.name"),
    );
    let arrays = ContactArrays::new(rows.iter().copied());
    let company_names = company_names_of(tx, &arrays.company_id).await?;
    let mut params: Vec<&(dyn ToSql + Sync)> = arrays.params().to_vec();
    params.push(&created_by);
    params.push(&company_names);
    let stmt = tx.prepare_cached(&sql).await?;
    let written: Vec<ContactDetails> = tx.query(&stmt, &params).await?.iter().map(contact_from).collect();
    collect_search_terms(tx, &written.iter().map(|c| c.id).collect::<Vec<_>>()).await?;
    Ok(written)
}

/// Rewrites contacts (every field) in one statement.
pub async fn update_contacts(tx: &TenantTx, rows: &[(i32, &ContactWrite)]) -> DbResult<Vec<ContactDetails>> {
    let returning: Vec<String> = CONTACT_FIELDS.iter().map(|f| format!("t.{f}")).collect();
    let sql = format!(
        "WITH c AS (
             UPDATE contacts t SET first_name = u.first_name, last_name = u.last_name, email = u.email, phone = u.phone,
                 job_title = u.job_title, company_id = u.company_id, owner_id = u.owner_id, status = u.status,
                 source = u.source, street_address = u.street, city = u.city, state = u.state, country = u.country,
                 postal_code = u.postal_code, custom_fields = u.custom_fields, notes = u.notes,
                 tags = coalesce(string_to_array(nullif(u.tags, ''), ','), '{{}}'), updated_at = now(),
                 search_words = {SEARCH_WORDS_OF_U}
             FROM unnest($18::int4[], {UNNEST_ARGS}, $19::text[]) AS u(id, {UNNEST_NAMES}, company_name)
             WHERE t.id = u.id
             RETURNING {returning})
         SELECT {cols} FROM c LEFT JOIN companies co ON co.id = c.company_id AND co.deleted_at IS NULL ORDER BY c.id",
        returning = returning.join(", "),
        cols = contact_cols("c", "co.name"),
    );
    let arrays = ContactArrays::new(rows.iter().map(|(_, w)| *w));
    let ids: Vec<i32> = rows.iter().map(|(id, _)| *id).collect();
    let company_names = company_names_of(tx, &arrays.company_id).await?;
    let mut params: Vec<&(dyn ToSql + Sync)> = arrays.params().to_vec();
    params.push(&ids);
    params.push(&company_names);
    let stmt = tx.prepare_cached(&sql).await?;
    let written: Vec<ContactDetails> = tx.query(&stmt, &params).await?.iter().map(contact_from).collect();
    collect_search_terms(tx, &written.iter().map(|c| c.id).collect::<Vec<_>>()).await?;
    Ok(written)
}

/// A live contact (`None` for one in the trash, issue 16).
pub async fn contact_by_id(tx: &TenantTx, id: i32) -> DbResult<Option<ContactDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {} FROM {CONTACT_FROM} WHERE c.id = $1 AND c.deleted_at IS NULL", contact_cols("c", "co.name"))).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(contact_from))
}

/// A live contact, locked (`None` for one in the trash).
pub async fn contact_for_update(tx: &TenantTx, id: i32) -> DbResult<Option<ContactDetails>> {
    let sql = format!("SELECT {} FROM {CONTACT_FROM} WHERE c.id = $1 AND c.deleted_at IS NULL FOR UPDATE OF c", contact_cols("c", "co.name"));
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(contact_from))
}

/// Live contacts by email, case-insensitively, locked for update (import duplicates; a
/// trashed contact holds no email).
pub async fn contacts_by_emails(tx: &TenantTx, lower_emails: &[String]) -> DbResult<Vec<ContactDetails>> {
    let sql = format!("SELECT {} FROM {CONTACT_FROM} WHERE lower(c.email) = ANY($1) AND c.deleted_at IS NULL FOR UPDATE OF c", contact_cols("c", "co.name"));
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query(&stmt, &[&lower_emails]).await?.iter().map(contact_from).collect())
}

/// Whether another live contact (not `except`) has this email, case-insensitively (a
/// trashed contact does not hold its email: contacts_email_key covers live rows only).
pub async fn email_taken(tx: &TenantTx, email: &str, except: Option<i32>) -> DbResult<bool> {
    let stmt = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM contacts WHERE lower(email) = lower($1) AND id IS DISTINCT FROM $2 AND deleted_at IS NULL)")
        .await?;
    Ok(tx.query_one(&stmt, &[&email, &except]).await?.get(0))
}

/// Erases the contact for good, trashed or not (its history rows cascade).
pub async fn delete_contact(tx: &TenantTx, id: i32) -> DbResult<bool> {
    Ok(tx.execute("DELETE FROM contacts WHERE id = $1", &[&id]).await? == 1)
}

pub async fn contacts_basic(tx: &TenantTx, ids: &[i32]) -> DbResult<Vec<ContactBasicInfo>> {
    // Trashed contacts are not found (issue 16: hidden from lookups like from GET).
    let stmt = tx
        .prepare_cached("SELECT id, first_name, last_name, email, marketing_consent FROM contacts WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id")
        .await?;
    Ok(tx
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| ContactBasicInfo {
            id: r.get(0),
            first_name: r.get(1),
            last_name: r.get(2),
            email: text(r, 3),
            marketing_consent: consent(r, 4),
        })
        .collect())
}

#[derive(Debug, Default, Clone)]
pub struct ContactFilter {
    pub status: Option<ContactStatus>,
    pub owner_id: Option<i32>,
    pub company_id: Option<i32>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    /// `?inactive_days=N` as an instant (now - N x 24 h): contacts whose last contact, or
    /// creation when never contacted, is at or before it.
    pub inactive_since: Option<DateTime<Utc>>,
    /// `?cf.<key>=<value>` filters (issue 16), every one must match.
    pub custom: Vec<crate::service::custom_fields::CfFilter>,
    /// `?min_score=` / `?max_score=`: the lead score within these bounds (inclusive).
    pub min_score: Option<i32>,
    pub max_score: Option<i32>,
}

/// Sortable contact fields (the whitelist of `?sort=`).
pub const CONTACT_SORTS: [&str; 5] = ["created_at", "updated_at", "first_name", "last_name", "score"];

/// The conditions of a contact list; always "not in the trash" (issue 16) first.
pub(super) fn contact_where(q: &mut Query, f: &ContactFilter) -> Vec<String> {
    let mut conds = vec!["c.deleted_at IS NULL".to_owned()];
    if let Some(s) = f.status {
        conds.push(format!("c.status = {}", q.bind(s.as_str())));
    }
    if let Some(v) = f.owner_id {
        conds.push(format!("c.owner_id = {}", q.bind(v)));
    }
    if let Some(v) = f.company_id {
        conds.push(format!("c.company_id = {}", q.bind(v)));
    }
    if let Some(v) = f.created_after {
        conds.push(format!("c.created_at >= {}", q.bind(v)));
    }
    if let Some(v) = f.created_before {
        conds.push(format!("c.created_at < {}", q.bind(v)));
    }
    if !f.tags.is_empty() {
        conds.push(format!("c.tags @> {}", q.bind(f.tags.clone())));
    }
    if let Some(v) = f.inactive_since {
        // Instants on both sides (timestamptz): the session's or anyone's time zone plays no part.
        conds.push(format!("coalesce(c.last_contacted_at, c.created_at) <= {}", q.bind(v)));
    }
    if let Some(v) = f.min_score {
        conds.push(format!("c.score >= {}", q.bind(v)));
    }
    if let Some(v) = f.max_score {
        conds.push(format!("c.score <= {}", q.bind(v)));
    }
    super::custom_fields::cf_conditions(q, &mut conds, "c", &f.custom);
    conds
}

pub async fn list_contacts(
    tx: &TenantTx,
    f: &ContactFilter,
    sort: (&'static str, bool),
    after: Option<&ListCursor>,
    limit: i64,
) -> DbResult<Vec<ContactDetails>> {
    let mut q = Query::default();
    let mut conds = contact_where(&mut q, f);
    // The score is a number: compared as the cursor's number (`s`), not as text.
    let column = if sort.0 == "score" { "c.score::float4".to_owned() } else { format!("c.{}", sort.0) };
    let is_time = sort.0.ends_with("_at");
    let order = keyset(&mut q, &mut conds, &column, is_time, sort.1, after);
    let lim = q.bind(limit + 1);
    q.sql = format!("SELECT {} FROM {CONTACT_FROM} {} {order} LIMIT {lim}", contact_cols("c", "co.name"), where_clause(&conds));
    Ok(q.rows(tx).await?.iter().map(contact_from).collect())
}

pub async fn count_contacts(tx: &TenantTx, f: &ContactFilter) -> DbResult<i64> {
    let mut q = Query::default();
    let conds = contact_where(&mut q, f);
    q.sql = format!("SELECT count(*) FROM contacts c {}", where_clause(&conds));
    Ok(q.rows(tx).await?.first().map(|r| r.get(0)).unwrap_or(0))
}

/// The words of a search query as the database indexes them (accents folded, CJK letters
/// one by one; at most `max_words`), each with the vocabulary terms near it: `(word,
/// [(term, trigram similarity)])`, at most 64 terms per word, none for a word the tenant
/// never used. Needs [`set_similarity_threshold`](super::set_similarity_threshold) first
/// (the `%` operator, which the vocabulary's trigram index answers, reads it).
pub async fn search_term_candidates(tx: &TenantTx, query: &str, max_words: i32) -> DbResult<Vec<(String, Vec<(String, f32)>)>> {
    let stmt = tx
        .prepare_cached(
            "SELECT w.ord::int4, w.word, t.term, similarity(t.term, w.word)
             FROM unnest((contact_search_words($1, NULL, NULL, NULL))[1:$2]) WITH ORDINALITY AS w(word, ord)
             LEFT JOIN LATERAL (
                 SELECT term FROM contact_search_terms
                 WHERE term % w.word OR term LIKE w.word || '%'
                 ORDER BY similarity(term, w.word) DESC, term LIMIT 64) t ON true
             ORDER BY w.ord",
        )
        .await?;
    let mut out: Vec<(String, Vec<(String, f32)>)> = Vec::new();
    let mut last = 0;
    for r in tx.query(&stmt, &[&query, &max_words]).await? {
        let ord: i32 = r.get(0);
        if ord != last {
            out.push((r.get(1), Vec::new()));
            last = ord;
        }
        if let (Some(term), Some(sim), Some(entry)) = (r.get::<_, Option<String>>(2), r.get::<_, Option<f32>>(3), out.last_mut()) {
            entry.1.push((term, sim));
        }
    }
    Ok(out)
}

/// A search hit with its relevance and the number of ranked candidates.
pub struct SearchHit {
    pub contact: ContactDetails,
    pub score: f32,
    pub total: i64,
}

/// Contacts having, for every query word, one of its matching terms; at most `cap` of them
/// are ranked by the best trigram similarity of the query to first name, last name, full
/// name (also surname first, without a space, as CJK names are written), email and company
/// name, all accent-folded.
#[allow(clippy::too_many_arguments)]
pub async fn search_contacts(
    tx: &TenantTx,
    term_sets: &[Vec<String>],
    query: &str,
    f: &ContactFilter,
    after: Option<&ListCursor>,
    limit: i64,
    cap: i64,
) -> DbResult<Vec<SearchHit>> {
    let mut q = Query::default();
    let mut conds = contact_where(&mut q, f);
    for terms in term_sets {
        conds.push(format!("c.search_words && {}::text[]", q.bind(terms.clone())));
    }
    let qp = format!("contact_fold({})", q.bind(query.to_owned()));
    let cap = q.bind(cap);
    let inner_fields: Vec<String> = CONTACT_FIELDS.iter().map(|f| format!("c.{f}")).collect();
    let mut outer = Vec::new();
    if let Some(c) = after {
        let (s, id) = (q.bind(c.s.unwrap_or(0.0)), q.bind(c.id));
        outer.push(format!("(r.relevance < {s} OR (r.relevance = {s} AND r.id > {id}))"));
    }
    let lim = q.bind(limit + 1);
    q.sql = format!(
        "SELECT {cols}, r.relevance, r.total FROM (
             SELECT {inner_cols},
                 greatest(similarity({qp}, contact_fold(c.first_name)), similarity({qp}, contact_fold(c.last_name)),
                          similarity({qp}, contact_fold(c.first_name || ' ' || c.last_name)),
                          similarity({qp}, contact_fold(c.last_name || c.first_name)),
                          similarity({qp}, contact_fold(coalesce(c.email, ''))), similarity({qp}, contact_fold(coalesce(co.name, '')))) AS relevance,
                 count(*) OVER () AS total
             FROM (SELECT {fields} FROM contacts c {where_} LIMIT {cap}) c
             LEFT JOIN companies co ON co.id = c.company_id AND co.deleted_at IS NULL) r
         {outer_where} ORDER BY r.relevance DESC, r.id LIMIT {lim}",
        cols = contact_cols("r", "r.company_name"),
        inner_cols = contact_cols("c", "co.name AS company_name"),
        fields = inner_fields.join(", "),
        where_ = where_clause(&conds),
        outer_where = where_clause(&outer),
    );
    // Score and total follow the contact's columns (its fields and the company name).
    let score = CONTACT_FIELDS.len() + 1;
    Ok(q.rows(tx).await?.iter().map(|r| SearchHit { contact: contact_from(r), score: r.get(score), total: r.get(score + 1) }).collect())
}

/// Contacts after `after_id` in id order (export).
pub async fn export_page(tx: &TenantTx, after_id: i32, limit: i64) -> DbResult<Vec<ContactDetails>> {
    let sql = format!("SELECT {} FROM {CONTACT_FROM} WHERE c.id > $1 AND c.deleted_at IS NULL ORDER BY c.id LIMIT $2", contact_cols("c", "co.name"));
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query(&stmt, &[&after_id, &limit]).await?.iter().map(contact_from).collect())
}

// Status history, stats, tags

/// One status change to record.
pub struct StatusChange<'a> {
    pub contact_id: i32,
    pub from: Option<ContactStatus>,
    pub to: ContactStatus,
    pub reason: Option<&'a str>,
}

pub async fn record_status_changes(tx: &TenantTx, changes: &[StatusChange<'_>], changed_by: i32) -> DbResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let ids: Vec<i32> = changes.iter().map(|c| c.contact_id).collect();
    let from: Vec<Option<&str>> = changes.iter().map(|c| c.from.map(|s| s.as_str())).collect();
    let to: Vec<&str> = changes.iter().map(|c| c.to.as_str()).collect();
    let reason: Vec<Option<&str>> = changes.iter().map(|c| c.reason).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO contact_status_history (contact_id, from_status, to_status, reason, changed_by)
             SELECT u.contact_id, u.from_status, u.to_status, u.reason, $5
             FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[]) AS u(contact_id, from_status, to_status, reason)",
        )
        .await?;
    tx.execute(&stmt, &[&ids, &from, &to, &reason, &changed_by]).await?;
    Ok(())
}

/// Newest first, `limit + 1` rows after the cursor id.
pub async fn status_history(tx: &TenantTx, contact_id: i32, before_id: Option<i64>, limit: i64) -> DbResult<Vec<StatusHistoryEntry>> {
    let stmt = tx
        .prepare_cached(
            "SELECT id, contact_id, from_status, to_status, reason, changed_by, changed_at FROM contact_status_history
             WHERE contact_id = $1 AND ($2::int8 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .await?;
    Ok(tx
        .query(&stmt, &[&contact_id, &before_id, &(limit + 1)])
        .await?
        .iter()
        .map(|r| StatusHistoryEntry {
            id: r.get(0),
            contact_id: r.get(1),
            from_status: r.get(2),
            to_status: r.get(3),
            reason: r.get(4),
            changed_by: r.get(5),
            changed_at: r.get(6),
        })
        .collect())
}

/// Current contacts per status.
pub async fn count_by_status(tx: &TenantTx) -> DbResult<Vec<(String, i64)>> {
    let stmt = tx.prepare_cached("SELECT status, count(*) FROM contacts WHERE deleted_at IS NULL GROUP BY status").await?;
    Ok(tx.query(&stmt, &[]).await?.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// In `[from, to)`: conversions (lead/prospect -> customer) and contacts that entered lead or
/// prospect (created so, or moved there).
pub async fn conversions(tx: &TenantTx, from: DateTime<Utc>, to: DateTime<Utc>) -> DbResult<(i64, i64)> {
    let stmt = tx
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE to_status = 'customer' AND from_status IN ('lead', 'prospect')),
                    count(DISTINCT contact_id) FILTER (WHERE to_status IN ('lead', 'prospect'))
             FROM contact_status_history WHERE changed_at >= $1 AND changed_at < $2",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&from, &to]).await?;
    Ok((row.get(0), row.get(1)))
}

pub async fn tag_counts(tx: &TenantTx) -> DbResult<Vec<TagCount>> {
    let stmt = tx
        .prepare_cached(
            "SELECT tag, count(*) FILTER (WHERE kind = 'contact'), count(*) FILTER (WHERE kind = 'company') FROM (
                 SELECT unnest(tags) AS tag, 'contact' AS kind FROM contacts WHERE deleted_at IS NULL
                 UNION ALL SELECT unnest(tags), 'company' FROM companies WHERE deleted_at IS NULL) t
             GROUP BY tag ORDER BY tag LIMIT 1000",
        )
        .await?;
    Ok(tx.query(&stmt, &[]).await?.iter().map(|r| TagCount { tag: r.get(0), contacts: r.get(1), companies: r.get(2) }).collect())
}
