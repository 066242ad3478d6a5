//! Duplicates and merging of contacts and companies (issue 16).
//!
//! Duplicate candidates are found one record at a time ("anchor"), each probing three
//! indexes of contact V8 for the others that share its mailbox, its phone or a similar name,
//! so a page costs one index probe per anchor scanned instead of a comparison of every pair.
//! The expressions below are the ones V8 indexes (an index answers only its own expression).

use chrono::{DateTime, Utc};
use crm_client_contact::{CompanyDetails, ContactDetails};
use crm_tenant::TenantTx;

use super::companies::{company_cols, company_from};
use super::contacts::{CONTACT_COLUMNS, CONTACT_FROM, contact_cols, contact_from};
use super::{DbResult, text};

/// The mailbox of a contact: email lowercased, "+tag" of the local part removed.
const EMAIL_KEY: &str = "lower(regexp_replace({t}.email, '\\+[^@]*@', '@'))";
/// The phone of a contact: its last 9 digits (compared only with 7 digits or more).
const PHONE_KEY: &str = "right(regexp_replace({t}.phone, '[^0-9]', '', 'g'), 9)";
const PHONE_LONG_ENOUGH: &str = "length(regexp_replace({t}.phone, '[^0-9]', '', 'g')) >= 7";
/// The folded full name (trigram index contacts_dup_name_trgm).
const NAME_KEY: &str = "contact_fold({t}.first_name || ' ' || {t}.last_name)";
/// The site of a company: the domain, else the website's host, lowercased, without "www.".
const SITE_KEY: &str =
    "lower(regexp_replace(coalesce(nullif({t}.domain, ''), {t}.website), '^([a-zA-Z]+://)?(www\\.)?([^/:?#]+).*$', '\\3'))";
const SITE_PRESENT: &str = "coalesce(nullif({t}.domain, ''), {t}.website) IS NOT NULL";
/// The folded name of a company (trigram index companies_name_fold_trgm, contact V2).
const COMPANY_NAME_KEY: &str = "contact_fold({t}.name)";

fn on(expr: &str, alias: &str) -> String {
    expr.replace("{t}", alias)
}

/// The parts of a contact that duplicate detection compares.
#[derive(Debug, Clone)]
pub struct ContactKeys {
    pub id: i32,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub company_id: Option<i32>,
    pub company_name: Option<String>,
    pub owner_id: Option<i32>,
}

/// One candidate pair `(a, b)`: what each matched on, and the names' trigram similarity.
#[derive(Debug, Clone)]
pub struct ContactPair {
    pub a: ContactKeys,
    pub b: ContactKeys,
    pub same_email: bool,
    pub same_phone: bool,
    pub name_similarity: f32,
}

/// Which pairs to list: every pair `a.id < b.id` after the cursor `(a, b)`, or the pairs of
/// one contact `a` (with every other `b`, after `b`).
#[derive(Debug, Clone, Copy)]
pub enum PairScope {
    All { after: Option<(i32, i32)> },
    Of { id: i32, after: Option<i32> },
}

impl PairScope {
    /// The SQL conditions of a page: on the pair (outer), on a candidate `b` of anchor `a`
    /// (inside each index probe, so that no probe returns what the page drops), and the three
    /// parameters ($1..$3; each condition names all three, typed, so that the statement
    /// prepares whichever is unused). `b.id + 0`: a bound on the id is no index condition (a
    /// bitmap of the primary key AND-ed into every probe cost more than the probe).
    fn conditions(&self) -> (&'static str, &'static str, [Option<i32>; 3]) {
        match *self {
            Self::All { after } => (
                "a.id >= coalesce($1::int4, 0) AND ($5::int4 IS NULL OR a.id < $5) AND $3::int4 IS NULL AND ($1::int4 IS NULL OR (a.id, b.id) > ($1, $2::int4))",
                "b.id + 0 > a.id",
                [after.map(|a| a.0), after.map(|a| a.1), None],
            ),
            Self::Of { id, after } => {
                ("a.id = $3::int4 AND $5::int4 IS NULL AND $1::int4 IS NULL AND ($2::int4 IS NULL OR b.id > $2)", "b.id + 0 <> a.id", [None, after, Some(id)])
            }
        }
    }
}

/// The end (exclusive) of the anchors a page of [`PairScope::All`] examines: the id of the
/// `window + 1`-th live row of `table` from `from` on (`None`: the rest of the table). Bounds the
/// work of one page (one index probe per anchor) whatever the density of duplicates.
async fn window_end(tx: &TenantTx, table: &str, scope: PairScope, window: i64) -> DbResult<Option<i32>> {
    let PairScope::All { after } = scope else { return Ok(None) };
    let from = after.map_or(0, |a| a.0);
    let stmt = tx
        .prepare_cached(&format!("SELECT id FROM {table} WHERE deleted_at IS NULL AND id >= $1 ORDER BY id OFFSET $2 LIMIT 1"))
        .await?;
    Ok(tx.query_opt(&stmt, &[&from, &window]).await?.map(|r| r.get(0)))
}

fn keys_from(r: &tokio_postgres::Row, at: usize) -> ContactKeys {
    ContactKeys {
        id: r.get(at),
        first_name: r.get(at + 1),
        last_name: r.get(at + 2),
        email: text(r, at + 3),
        phone: text(r, at + 4),
        company_id: r.get(at + 5),
        company_name: r.get(at + 6),
        owner_id: r.get(at + 7),
    }
}

/// One page (`limit + 1` rows) of candidate contact pairs in `(a.id, b.id)` order: same
/// mailbox, same phone, or names at least as similar as pg_trgm's `%` threshold (set by the
/// caller, [`super::set_similarity_threshold`]). Live contacts only.
///
/// Examines at most `window` anchors ([`PairScope::All`]): also returns where the next page
/// must start when it stopped there (`Some(end)`, the first anchor not examined).
pub async fn contact_pairs(tx: &TenantTx, scope: PairScope, limit: i64, window: i64) -> DbResult<(Vec<ContactPair>, Option<i32>)> {
    let end = window_end(tx, "contacts", scope, window).await?;
    let (cond, inner, [p1, p2, p3]) = scope.conditions();
    let (ea, eb, pa, pb, la, lb, na, nb) = (
        on(EMAIL_KEY, "a"),
        on(EMAIL_KEY, "b"),
        on(PHONE_KEY, "a"),
        on(PHONE_KEY, "b"),
        on(PHONE_LONG_ENOUGH, "a"),
        on(PHONE_LONG_ENOUGH, "b"),
        on(NAME_KEY, "a"),
        on(NAME_KEY, "b"),
    );
    // The candidates carry their columns (no join back by id: the planner would hash the
    // whole table per anchor).
    let b_cols = "b.id, b.first_name, b.last_name, b.email, b.phone, b.company_id, b.owner_id";
    let sql = format!(
        "SELECT a.id, a.first_name, a.last_name, a.email, a.phone, a.company_id, ca.name, a.owner_id,
                b.id, b.first_name, b.last_name, b.email, b.phone, b.company_id, cb.name, b.owner_id,
                coalesce({ea} = {eb}, false), coalesce({la} AND {lb} AND {pa} = {pb}, false), similarity({na}, {nb})
         FROM contacts a
         CROSS JOIN LATERAL (
             SELECT {b_cols} FROM contacts b
              WHERE a.email IS NOT NULL AND b.email IS NOT NULL AND b.deleted_at IS NULL AND {eb} = {ea} AND {inner}
             UNION
             SELECT {b_cols} FROM contacts b
              WHERE a.phone IS NOT NULL AND {la} AND b.phone IS NOT NULL AND {lb} AND b.deleted_at IS NULL AND {pb} = {pa} AND {inner}
             UNION
             SELECT {b_cols} FROM contacts b WHERE b.deleted_at IS NULL AND {nb} % {na} AND {inner}
         ) b
         LEFT JOIN companies ca ON ca.id = a.company_id AND ca.deleted_at IS NULL
         LEFT JOIN companies cb ON cb.id = b.company_id AND cb.deleted_at IS NULL
         WHERE a.deleted_at IS NULL AND {cond}
         ORDER BY a.id, b.id
         LIMIT $4"
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let rows = tx.query(&stmt, &[&p1, &p2, &p3, &(limit + 1), &end]).await?;
    let pairs = rows
        .iter()
        .map(|r| ContactPair { a: keys_from(r, 0), b: keys_from(r, 8), same_email: r.get(16), same_phone: r.get(17), name_similarity: r.get(18) })
        .collect();
    Ok((pairs, end))
}

/// Whether a live contact `id` exists.
pub async fn live_contact_exists(tx: &TenantTx, id: i32) -> DbResult<bool> {
    let stmt = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM contacts WHERE id = $1 AND deleted_at IS NULL)").await?;
    Ok(tx.query_one(&stmt, &[&id]).await?.get(0))
}

/// The parts of a company that duplicate detection compares.
#[derive(Debug, Clone)]
pub struct CompanyKeys {
    pub id: i32,
    pub name: String,
    pub domain: String,
    pub website: String,
}

/// One candidate company pair.
#[derive(Debug, Clone)]
pub struct CompanyPair {
    pub a: CompanyKeys,
    pub b: CompanyKeys,
    pub same_site: bool,
    pub name_similarity: f32,
}

/// One page (`limit + 1` rows) of candidate company pairs: same site (domain or website
/// host) or similar names (pg_trgm `%`, threshold set by the caller). Live companies only.
/// Examines at most `window` anchors, like [`contact_pairs`].
pub async fn company_pairs(tx: &TenantTx, scope: PairScope, limit: i64, window: i64) -> DbResult<(Vec<CompanyPair>, Option<i32>)> {
    let end = window_end(tx, "companies", scope, window).await?;
    let (cond, inner, [p1, p2, p3]) = scope.conditions();
    let (sa, sb, pa, pb, na, nb) =
        (on(SITE_KEY, "a"), on(SITE_KEY, "b"), on(SITE_PRESENT, "a"), on(SITE_PRESENT, "b"), on(COMPANY_NAME_KEY, "a"), on(COMPANY_NAME_KEY, "b"));
    let sql = format!(
        "SELECT a.id, a.name, a.domain, a.website, b.id, b.name, b.domain, b.website,
                coalesce({pa} AND {pb} AND {sa} = {sb}, false), similarity({na}, {nb})
         FROM companies a
         CROSS JOIN LATERAL (
             SELECT b.id, b.name, b.domain, b.website FROM companies b
              WHERE {pa} AND {pb} AND b.deleted_at IS NULL AND {sb} = {sa} AND {inner}
             UNION
             SELECT b.id, b.name, b.domain, b.website FROM companies b WHERE {nb} % {na} AND b.deleted_at IS NULL AND {inner}
         ) b
         WHERE a.deleted_at IS NULL AND {cond}
         ORDER BY a.id, b.id
         LIMIT $4"
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let rows = tx.query(&stmt, &[&p1, &p2, &p3, &(limit + 1), &end]).await?;
    let keys = |r: &tokio_postgres::Row, at: usize| CompanyKeys { id: r.get(at), name: r.get(at + 1), domain: text(r, at + 2), website: text(r, at + 3) };
    let pairs = rows.iter().map(|r| CompanyPair { a: keys(r, 0), b: keys(r, 4), same_site: r.get(8), name_similarity: r.get(9) }).collect();
    Ok((pairs, end))
}

/// Whether a live company `id` exists.
pub async fn live_company_exists(tx: &TenantTx, id: i32) -> DbResult<bool> {
    let stmt = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1 AND deleted_at IS NULL)").await?;
    Ok(tx.query_one(&stmt, &[&id]).await?.get(0))
}

/// A record locked for a merge, with its trash state.
#[derive(Debug, Clone)]
pub struct Locked<T> {
    pub record: T,
    pub in_trash: bool,
    pub merged_into: Option<i32>,
}

/// Locks the contacts `ids` (trashed ones too, to tell "merged already" from "unknown"), in id
/// order so that two merges over the same contacts cannot deadlock; missing ids are absent.
pub async fn lock_contacts(tx: &TenantTx, ids: &[i32]) -> DbResult<Vec<Locked<ContactDetails>>> {
    let sql = format!(
        "SELECT {}, c.deleted_at IS NOT NULL, c.merged_into FROM {CONTACT_FROM} WHERE c.id = ANY($1) ORDER BY c.id FOR UPDATE OF c",
        contact_cols("c", "co.name")
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let at = CONTACT_COLUMNS + 1;
    Ok(tx
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| Locked { record: contact_from(r), in_trash: r.get(at), merged_into: r.get(at + 1) })
        .collect())
}

/// Moves the contacts `ids` to the trash as merged into `survivor` by `by`; the time.
pub async fn trash_merged_contacts(tx: &TenantTx, ids: &[i32], survivor: i32, by: i32, at: DateTime<Utc>) -> DbResult<u64> {
    let stmt = tx
        .prepare_cached(
            "UPDATE contacts SET deleted_at = $4, deleted_by = $3, merged_into = $2, updated_at = $4
             WHERE id = ANY($1) AND deleted_at IS NULL",
        )
        .await?;
    tx.execute(&stmt, &[&ids, &survivor, &by, &at]).await
}

/// The merged contacts' engagement (the lead score's signals, one row per event) becomes the
/// survivor's, and the survivor was last contacted when any of them was.
pub async fn move_contact_signals(tx: &TenantTx, survivor: i32, merged: &[i32]) -> DbResult<()> {
    let engagement = tx.prepare_cached("UPDATE contact_engagement SET contact_id = $1 WHERE contact_id = ANY($2)").await?;
    tx.execute(&engagement, &[&survivor, &merged]).await?;
    let contacted = tx
        .prepare_cached(
            "UPDATE contacts SET last_contacted_at = GREATEST(last_contacted_at, (SELECT max(last_contacted_at) FROM contacts WHERE id = ANY($2)))
             WHERE id = $1",
        )
        .await?;
    tx.execute(&contacted, &[&survivor, &merged]).await?;
    Ok(())
}

/// Locks the companies `ids` (trashed too), in id order.
pub async fn lock_companies(tx: &TenantTx, ids: &[i32]) -> DbResult<Vec<Locked<CompanyDetails>>> {
    let n = company_cols("c").split(", ").count();
    let sql = format!(
        "SELECT {}, c.deleted_at IS NOT NULL, c.merged_into FROM companies c WHERE c.id = ANY($1) ORDER BY c.id FOR UPDATE OF c",
        company_cols("c")
    );
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| Locked { record: company_from(r), in_trash: r.get(n), merged_into: r.get(n + 1) })
        .collect())
}

/// Moves the companies `ids` to the trash as merged into `survivor`.
pub async fn trash_merged_companies(tx: &TenantTx, ids: &[i32], survivor: i32, by: i32, at: DateTime<Utc>) -> DbResult<u64> {
    let stmt = tx
        .prepare_cached(
            "UPDATE companies SET deleted_at = $4, deleted_by = $3, merged_into = $2, updated_at = $4
             WHERE id = ANY($1) AND deleted_at IS NULL",
        )
        .await?;
    tx.execute(&stmt, &[&ids, &survivor, &by, &at]).await
}

/// Subsidiaries of the merged companies become the survivor's (never the survivor itself:
/// no company is its own parent).
pub async fn move_subsidiaries(tx: &TenantTx, survivor: i32, merged: &[i32]) -> DbResult<u64> {
    let stmt = tx
        .prepare_cached("UPDATE companies SET parent_company_id = $1, updated_at = now() WHERE parent_company_id = ANY($2) AND id <> $1")
        .await?;
    tx.execute(&stmt, &[&survivor, &merged]).await
}

/// Contacts of the merged companies (trashed ones too: references are kept in the trash)
/// move to the survivor, re-worded with its name; `(id, old company id)` of each.
pub async fn move_company_contacts(tx: &TenantTx, survivor: i32, survivor_name: &str, merged: &[i32]) -> DbResult<Vec<(i32, i32, bool)>> {
    let stmt = tx
        .prepare_cached(
            "UPDATE contacts c SET company_id = $1, updated_at = now(),
                    search_words = contact_search_words(c.first_name, c.last_name, c.email, $3)
             FROM (SELECT id, company_id FROM contacts WHERE company_id = ANY($2)) old
             WHERE c.id = old.id
             RETURNING c.id, old.company_id, c.deleted_at IS NULL",
        )
        .await?;
    let mut moved: Vec<(i32, i32, bool)> =
        tx.query(&stmt, &[&survivor, &merged, &survivor_name]).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    moved.sort_unstable();
    let ids: Vec<i32> = moved.iter().map(|m| m.0).collect();
    if !ids.is_empty() {
        // New words enter the vocabulary in sorted order (the rule of repo::contacts).
        let terms = tx
            .prepare_cached(
                "INSERT INTO contact_search_terms (term)
                 SELECT DISTINCT w FROM contacts, unnest(search_words) AS w WHERE id = ANY($1) ORDER BY w
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        tx.execute(&terms, &[&ids]).await?;
    }
    Ok(moved)
}
