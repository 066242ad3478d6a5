//! All SQL of contact-service. Every function takes the caller's tenant-scoped transaction
//! (search path = the tenant's schema, then `public` for pg_trgm), so the caller owns
//! atomicity; columns are always listed explicitly.

use chrono::{DateTime, Utc};
use crm_client_contact::{Address, CompanyBasicInfo, CompanyDetails, ContactBasicInfo, ContactDetails, ContactStatus, CustomFields};
use deadpool_postgres::Transaction;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use crate::domain::{CompanyWrite, ContactWrite};

pub type Tx<'a> = Transaction<'a>;
type DbResult<T> = Result<T, tokio_postgres::Error>;

/// A statement assembled from optional parts, with its parameters.
#[derive(Default)]
struct Query {
    sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Query {
    /// Adds a parameter and returns its placeholder (`$n`).
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }

    async fn rows(&self, tx: &Tx<'_>) -> DbResult<Vec<Row>> {
        let stmt = tx.prepare_cached(&self.sql).await?;
        tx.query(&stmt, &self.refs()).await
    }
}

fn text(row: &Row, i: usize) -> String {
    row.get::<_, Option<String>>(i).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Companies

const COMPANY_FIELDS: [&str; 18] = [
    "id",
    "name",
    "domain",
    "industry",
    "size_category",
    "parent_company_id",
    "street_address",
    "city",
    "state",
    "country",
    "postal_code",
    "phone",
    "website",
    "custom_fields",
    "tags",
    "created_at",
    "created_by",
    "updated_at",
];

fn company_cols(alias: &str) -> String {
    COMPANY_FIELDS.iter().map(|f| format!("{alias}.{f}")).collect::<Vec<_>>().join(", ")
}

fn company_from(row: &Row) -> CompanyDetails {
    CompanyDetails {
        id: row.get(0),
        name: row.get(1),
        domain: text(row, 2),
        industry: text(row, 3),
        size_category: text(row, 4),
        parent_company_id: row.get(5),
        address: Address {
            street: text(row, 6),
            city: text(row, 7),
            state: text(row, 8),
            country: text(row, 9),
            postal_code: text(row, 10),
        },
        phone: text(row, 11),
        website: text(row, 12),
        custom_fields: row.get::<_, Json<CustomFields>>(13).0,
        tags: row.get(14),
        created_at: row.get(15),
        created_by: row.get(16),
        updated_at: row.get(17),
    }
}

pub async fn insert_company(tx: &Tx<'_>, w: &CompanyWrite, created_by: i32) -> DbResult<CompanyDetails> {
    let sql = format!(
        "INSERT INTO companies AS c (name, domain, industry, size_category, parent_company_id, street_address, city, state,
             country, postal_code, phone, website, custom_fields, tags, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {}",
        company_cols("c")
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &w.name,
                &w.domain,
                &w.industry,
                &w.size_category,
                &w.parent_company_id,
                &w.address.street,
                &w.address.city,
                &w.address.state,
                &w.address.country,
                &w.address.postal_code,
                &w.phone,
                &w.website,
                &Json(&w.custom_fields),
                &w.tags,
                &created_by,
            ],
        )
        .await?;
    Ok(company_from(&row))
}

pub async fn company_by_id(tx: &Tx<'_>, id: i32) -> DbResult<Option<CompanyDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {} FROM companies c WHERE c.id = $1", company_cols("c"))).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(company_from))
}

/// Locks the row for the rest of the transaction (read, check, write).
pub async fn company_for_update(tx: &Tx<'_>, id: i32) -> DbResult<Option<CompanyDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {} FROM companies c WHERE c.id = $1 FOR UPDATE", company_cols("c"))).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(company_from))
}

pub async fn company_exists(tx: &Tx<'_>, id: i32) -> DbResult<bool> {
    let stmt = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1)").await?;
    Ok(tx.query_one(&stmt, &[&id]).await?.get(0))
}

pub async fn update_company(tx: &Tx<'_>, id: i32, w: &CompanyWrite) -> DbResult<CompanyDetails> {
    let sql = format!(
        "UPDATE companies c SET name = $2, domain = $3, industry = $4, size_category = $5, parent_company_id = $6,
             street_address = $7, city = $8, state = $9, country = $10, postal_code = $11, phone = $12, website = $13,
             custom_fields = $14, tags = $15, updated_at = now()
         WHERE c.id = $1 RETURNING {}",
        company_cols("c")
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &id,
                &w.name,
                &w.domain,
                &w.industry,
                &w.size_category,
                &w.parent_company_id,
                &w.address.street,
                &w.address.city,
                &w.address.state,
                &w.address.country,
                &w.address.postal_code,
                &w.phone,
                &w.website,
                &Json(&w.custom_fields),
                &w.tags,
            ],
        )
        .await?;
    Ok(company_from(&row))
}

/// Subsidiaries lose their parent and contacts their company (ON DELETE SET NULL).
pub async fn delete_company(tx: &Tx<'_>, id: i32) -> DbResult<bool> {
    Ok(tx.execute("DELETE FROM companies WHERE id = $1", &[&id]).await? == 1)
}

pub async fn companies_basic(tx: &Tx<'_>, ids: &[i32]) -> DbResult<Vec<CompanyBasicInfo>> {
    let stmt = tx.prepare_cached("SELECT id, name FROM companies WHERE id = ANY($1) ORDER BY id").await?;
    Ok(tx.query(&stmt, &[&ids]).await?.iter().map(|r| CompanyBasicInfo { id: r.get(0), name: r.get(1) }).collect())
}

/// Serializes changes of the company tree within the tenant, so two concurrent re-parentings
/// cannot build a cycle between them.
pub async fn lock_company_tree(tx: &Tx<'_>) -> DbResult<()> {
    let stmt = tx.prepare_cached("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':company_tree'))").await?;
    tx.execute(&stmt, &[]).await?;
    Ok(())
}

/// Whether `id` is `parent` or one of its ancestors (making `parent` the parent of `id`
/// would close a cycle).
pub async fn is_ancestor_or_self(tx: &Tx<'_>, id: i32, parent: i32) -> DbResult<bool> {
    let stmt = tx
        .prepare_cached(
            "WITH RECURSIVE up (id, parent_company_id, depth) AS (
                 SELECT id, parent_company_id, 1 FROM companies WHERE id = $2
                 UNION ALL
                 SELECT c.id, c.parent_company_id, up.depth + 1 FROM companies c JOIN up ON c.id = up.parent_company_id
                 WHERE up.depth < 1000)
             SELECT EXISTS (SELECT 1 FROM up WHERE id = $1)",
        )
        .await?;
    Ok(tx.query_one(&stmt, &[&id, &parent]).await?.get(0))
}

#[derive(Debug, Default, Clone)]
pub struct CompanyFilter {
    /// Lowercased; matched by substring or trigram similarity on the name.
    pub search: Option<String>,
    pub industry: Option<String>,
    pub size_category: Option<String>,
    pub parent_company_id: Option<i32>,
    pub tags: Vec<String>,
}

/// Sortable company fields (the whitelist of `?sort=`).
pub const COMPANY_SORTS: [&str; 3] = ["name", "created_at", "updated_at"];

/// Keyset position in a list: the sort value of the last row and its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListCursor {
    /// Sort field and direction the cursor was made for.
    pub k: String,
    pub desc: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<f32>,
    pub id: i32,
}

fn company_where(q: &mut Query, f: &CompanyFilter) -> Vec<String> {
    let mut conds = Vec::new();
    if let Some(s) = &f.search {
        let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let (p1, p2) = (q.bind(s.clone()), q.bind(format!("%{escaped}%")));
        conds.push(format!("(lower(c.name) % {p1} OR lower(c.name) LIKE {p2})"));
    }
    if let Some(v) = &f.industry {
        conds.push(format!("c.industry = {}", q.bind(v.clone())));
    }
    if let Some(v) = &f.size_category {
        conds.push(format!("c.size_category = {}", q.bind(v.clone())));
    }
    if let Some(v) = f.parent_company_id {
        conds.push(format!("c.parent_company_id = {}", q.bind(v)));
    }
    if !f.tags.is_empty() {
        conds.push(format!("c.tags @> {}", q.bind(f.tags.clone())));
    }
    conds
}

fn where_clause(conds: &[String]) -> String {
    if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) }
}

/// Keyset condition and ORDER BY for `column` (text or timestamptz) in `desc` order.
fn keyset(q: &mut Query, conds: &mut Vec<String>, column: &str, is_time: bool, desc: bool, after: Option<&ListCursor>) -> String {
    let (op, dir) = if desc { ("<", "DESC") } else { (">", "ASC") };
    if let Some(c) = after {
        let value = if is_time { q.bind(c.ts.unwrap_or_default()) } else { q.bind(c.t.clone().unwrap_or_default()) };
        let id = q.bind(c.id);
        conds.push(format!("({column}, c.id) {op} ({value}, {id})"));
    }
    format!("ORDER BY {column} {dir}, c.id {dir}")
}

pub async fn set_similarity_threshold(tx: &Tx<'_>, threshold: f32) -> DbResult<()> {
    let stmt = tx.prepare_cached("SELECT set_config('pg_trgm.similarity_threshold', $1, true)").await?;
    tx.execute(&stmt, &[&threshold.to_string()]).await?;
    Ok(())
}

/// One page (`limit + 1` rows: the extra one tells there is a next page).
pub async fn list_companies(
    tx: &Tx<'_>,
    f: &CompanyFilter,
    sort: (&'static str, bool),
    after: Option<&ListCursor>,
    limit: i64,
) -> DbResult<Vec<CompanyDetails>> {
    let mut q = Query::default();
    let mut conds = company_where(&mut q, f);
    let column = format!("c.{}", sort.0);
    let order = keyset(&mut q, &mut conds, &column, sort.0 != "name", sort.1, after);
    let lim = q.bind(limit + 1);
    q.sql = format!("SELECT {} FROM companies c {} {order} LIMIT {lim}", company_cols("c"), where_clause(&conds));
    Ok(q.rows(tx).await?.iter().map(company_from).collect())
}

pub async fn count_companies(tx: &Tx<'_>, f: &CompanyFilter) -> DbResult<i64> {
    let mut q = Query::default();
    let conds = company_where(&mut q, f);
    q.sql = format!("SELECT count(*) FROM companies c {}", where_clause(&conds));
    Ok(q.rows(tx).await?.first().map(|r| r.get(0)).unwrap_or(0))
}

/// Companies by name, case-insensitively (the import's `company` column): lowercased name -> id
/// (the oldest company when several share a name).
pub async fn companies_by_names(tx: &Tx<'_>, lower_names: &[String]) -> DbResult<Vec<(String, i32)>> {
    let stmt = tx
        .prepare_cached("SELECT DISTINCT ON (lower(name)) lower(name), id FROM companies WHERE lower(name) = ANY($1) ORDER BY lower(name), id")
        .await?;
    Ok(tx.query(&stmt, &[&lower_names]).await?.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub async fn existing_company_ids(tx: &Tx<'_>, ids: &[i32]) -> DbResult<Vec<i32>> {
    let stmt = tx.prepare_cached("SELECT id FROM companies WHERE id = ANY($1)").await?;
    Ok(tx.query(&stmt, &[&ids]).await?.iter().map(|r| r.get(0)).collect())
}

/// Creates companies with just a name (import), returning them.
pub async fn insert_companies_named(tx: &Tx<'_>, names: &[String], created_by: i32) -> DbResult<Vec<CompanyDetails>> {
    let sql = format!(
        "INSERT INTO companies AS c (name, created_by) SELECT n, $2 FROM unnest($1::text[]) AS n RETURNING {}",
        company_cols("c")
    );
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query(&stmt, &[&names, &created_by]).await?.iter().map(company_from).collect())
}

// ---------------------------------------------------------------------------------------
// Contacts

const CONTACT_FIELDS: [&str; 21] = [
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
];

/// The contact columns of `alias`, then the company name expression (22 columns).
fn contact_cols(alias: &str, company_name: &str) -> String {
    let mut cols: Vec<String> = CONTACT_FIELDS.iter().map(|f| format!("{alias}.{f}")).collect();
    cols.push(company_name.to_owned());
    cols.join(", ")
}

const CONTACT_FROM: &str = "contacts c LEFT JOIN companies co ON co.id = c.company_id";

fn contact_from(row: &Row) -> ContactDetails {
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
        company_name: row.get(21),
        owner_name: None,
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

/// Inserts contacts in one statement. A contact whose email (case-insensitively) already
/// exists is skipped, not an error: compare the returned rows with the input.
pub async fn insert_contacts(tx: &Tx<'_>, rows: &[&ContactWrite], created_by: i32) -> DbResult<Vec<ContactDetails>> {
    let sql = format!(
        "WITH c AS (
             INSERT INTO contacts (first_name, last_name, email, phone, job_title, company_id, owner_id, status, source,
                 street_address, city, state, country, postal_code, custom_fields, notes, tags, created_by)
             SELECT u.first_name, u.last_name, u.email, u.phone, u.job_title, u.company_id, u.owner_id, u.status, u.source,
                 u.street, u.city, u.state, u.country, u.postal_code, u.custom_fields, u.notes,
                 coalesce(string_to_array(nullif(u.tags, ''), ','), '{{}}'), $18
             FROM unnest({UNNEST_ARGS}) AS u({UNNEST_NAMES})
             ON CONFLICT ((lower(email))) WHERE email IS NOT NULL DO NOTHING
             RETURNING {fields})
         SELECT {cols} FROM c LEFT JOIN companies co ON co.id = c.company_id ORDER BY c.id",
        fields = CONTACT_FIELDS.join(", "),
        cols = contact_cols("c", "co.name"),
    );
    let arrays = ContactArrays::new(rows.iter().copied());
    let mut params: Vec<&(dyn ToSql + Sync)> = arrays.params().to_vec();
    params.push(&created_by);
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query(&stmt, &params).await?.iter().map(contact_from).collect())
}

/// Rewrites contacts (every field) in one statement.
pub async fn update_contacts(tx: &Tx<'_>, rows: &[(i32, &ContactWrite)]) -> DbResult<Vec<ContactDetails>> {
    let returning: Vec<String> = CONTACT_FIELDS.iter().map(|f| format!("t.{f}")).collect();
    let sql = format!(
        "WITH c AS (
             UPDATE contacts t SET first_name = u.first_name, last_name = u.last_name, email = u.email, phone = u.phone,
                 job_title = u.job_title, company_id = u.company_id, owner_id = u.owner_id, status = u.status,
                 source = u.source, street_address = u.street, city = u.city, state = u.state, country = u.country,
                 postal_code = u.postal_code, custom_fields = u.custom_fields, notes = u.notes,
                 tags = coalesce(string_to_array(nullif(u.tags, ''), ','), '{{}}'), updated_at = now()
             FROM unnest($18::int4[], {UNNEST_ARGS}) AS u(id, {UNNEST_NAMES})
             WHERE t.id = u.id
             RETURNING {returning})
         SELECT {cols} FROM c LEFT JOIN companies co ON co.id = c.company_id ORDER BY c.id",
        returning = returning.join(", "),
        cols = contact_cols("c", "co.name"),
    );
    let arrays = ContactArrays::new(rows.iter().map(|(_, w)| *w));
    let ids: Vec<i32> = rows.iter().map(|(id, _)| *id).collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = arrays.params().to_vec();
    params.push(&ids);
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query(&stmt, &params).await?.iter().map(contact_from).collect())
}

pub async fn contact_by_id(tx: &Tx<'_>, id: i32) -> DbResult<Option<ContactDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {} FROM {CONTACT_FROM} WHERE c.id = $1", contact_cols("c", "co.name"))).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(contact_from))
}

pub async fn contact_for_update(tx: &Tx<'_>, id: i32) -> DbResult<Option<ContactDetails>> {
    let sql = format!("SELECT {} FROM {CONTACT_FROM} WHERE c.id = $1 FOR UPDATE OF c", contact_cols("c", "co.name"));
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(contact_from))
}

/// Contacts by email, case-insensitively, locked for update (import duplicates).
pub async fn contacts_by_emails(tx: &Tx<'_>, lower_emails: &[String]) -> DbResult<Vec<ContactDetails>> {
    let sql = format!("SELECT {} FROM {CONTACT_FROM} WHERE lower(c.email) = ANY($1) FOR UPDATE OF c", contact_cols("c", "co.name"));
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query(&stmt, &[&lower_emails]).await?.iter().map(contact_from).collect())
}

/// Whether another contact (not `except`) has this email, case-insensitively.
pub async fn email_taken(tx: &Tx<'_>, email: &str, except: Option<i32>) -> DbResult<bool> {
    let stmt = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM contacts WHERE lower(email) = lower($1) AND id IS DISTINCT FROM $2)")
        .await?;
    Ok(tx.query_one(&stmt, &[&email, &except]).await?.get(0))
}

pub async fn delete_contact(tx: &Tx<'_>, id: i32) -> DbResult<bool> {
    Ok(tx.execute("DELETE FROM contacts WHERE id = $1", &[&id]).await? == 1)
}

pub async fn contacts_basic(tx: &Tx<'_>, ids: &[i32]) -> DbResult<Vec<ContactBasicInfo>> {
    let stmt = tx.prepare_cached("SELECT id, first_name, last_name, email FROM contacts WHERE id = ANY($1) ORDER BY id").await?;
    Ok(tx
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| ContactBasicInfo { id: r.get(0), first_name: r.get(1), last_name: r.get(2), email: text(r, 3) })
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
}

/// Sortable contact fields (the whitelist of `?sort=`).
pub const CONTACT_SORTS: [&str; 4] = ["created_at", "updated_at", "first_name", "last_name"];

fn contact_where(q: &mut Query, f: &ContactFilter) -> Vec<String> {
    let mut conds = Vec::new();
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
    conds
}

pub async fn list_contacts(
    tx: &Tx<'_>,
    f: &ContactFilter,
    sort: (&'static str, bool),
    after: Option<&ListCursor>,
    limit: i64,
) -> DbResult<Vec<ContactDetails>> {
    let mut q = Query::default();
    let mut conds = contact_where(&mut q, f);
    let column = format!("c.{}", sort.0);
    let is_time = sort.0.ends_with("_at");
    let order = keyset(&mut q, &mut conds, &column, is_time, sort.1, after);
    let lim = q.bind(limit + 1);
    q.sql = format!("SELECT {} FROM {CONTACT_FROM} {} {order} LIMIT {lim}", contact_cols("c", "co.name"), where_clause(&conds));
    Ok(q.rows(tx).await?.iter().map(contact_from).collect())
}

pub async fn count_contacts(tx: &Tx<'_>, f: &ContactFilter) -> DbResult<i64> {
    let mut q = Query::default();
    let conds = contact_where(&mut q, f);
    q.sql = format!("SELECT count(*) FROM contacts c {}", where_clause(&conds));
    Ok(q.rows(tx).await?.first().map(|r| r.get(0)).unwrap_or(0))
}

/// Vocabulary terms near each query word: `(word index, term, trigram similarity)`, at most
/// 64 per word. Needs [`set_similarity_threshold`] first.
pub async fn search_term_candidates(tx: &Tx<'_>, words: &[String]) -> DbResult<Vec<(usize, String, f32)>> {
    let stmt = tx
        .prepare_cached(
            "SELECT w.ord::int4, t.term, similarity(t.term, w.word)
             FROM unnest($1::text[]) WITH ORDINALITY AS w(word, ord)
             CROSS JOIN LATERAL (
                 SELECT term FROM contact_search_terms
                 WHERE term % w.word OR term LIKE w.word || '%'
                 ORDER BY similarity(term, w.word) DESC, term LIMIT 64) t",
        )
        .await?;
    Ok(tx
        .query(&stmt, &[&words])
        .await?
        .iter()
        .map(|r| ((r.get::<_, i32>(0) - 1).max(0) as usize, r.get(1), r.get(2)))
        .collect())
}

/// A search hit with its relevance and the number of ranked candidates.
pub struct SearchHit {
    pub contact: ContactDetails,
    pub score: f32,
    pub total: i64,
}

/// Contacts having, for every query word, one of its matching terms; at most `cap` of them
/// are ranked by the best trigram similarity of the query to first name, last name, full
/// name, email and company name.
#[allow(clippy::too_many_arguments)]
pub async fn search_contacts(
    tx: &Tx<'_>,
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
    let qp = q.bind(query.to_owned());
    let cap = q.bind(cap);
    let inner_fields: Vec<String> = CONTACT_FIELDS.iter().map(|f| format!("c.{f}")).collect();
    let mut outer = Vec::new();
    if let Some(c) = after {
        let (s, id) = (q.bind(c.s.unwrap_or(0.0)), q.bind(c.id));
        outer.push(format!("(r.score < {s} OR (r.score = {s} AND r.id > {id}))"));
    }
    let lim = q.bind(limit + 1);
    q.sql = format!(
        "SELECT {cols}, r.score, r.total FROM (
             SELECT {inner_cols},
                 greatest(similarity({qp}, lower(c.first_name)), similarity({qp}, lower(c.last_name)),
                          similarity({qp}, lower(c.first_name || ' ' || c.last_name)),
                          similarity({qp}, lower(coalesce(c.email, ''))), similarity({qp}, lower(coalesce(co.name, '')))) AS score,
                 count(*) OVER () AS total
             FROM (SELECT {fields} FROM contacts c {where_} LIMIT {cap}) c
             LEFT JOIN companies co ON co.id = c.company_id) r
         {outer_where} ORDER BY r.score DESC, r.id LIMIT {lim}",
        cols = contact_cols("r", "r.company_name"),
        inner_cols = contact_cols("c", "co.name AS company_name"),
        fields = inner_fields.join(", "),
        where_ = where_clause(&conds),
        outer_where = where_clause(&outer),
    );
    Ok(q.rows(tx).await?.iter().map(|r| SearchHit { contact: contact_from(r), score: r.get(22), total: r.get(23) }).collect())
}

/// Contacts after `after_id` in id order (export).
pub async fn export_page(tx: &Tx<'_>, after_id: i32, limit: i64) -> DbResult<Vec<ContactDetails>> {
    let sql = format!("SELECT {} FROM {CONTACT_FROM} WHERE c.id > $1 ORDER BY c.id LIMIT $2", contact_cols("c", "co.name"));
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query(&stmt, &[&after_id, &limit]).await?.iter().map(contact_from).collect())
}

/// Writes many events into the tenant's outbox with one statement (the import: one statement,
/// and so one firing of the outbox's statement trigger, per batch instead of per row). Same
/// row shape as `crm_events::enqueue`: id, subject (= type), the whole envelope as payload.
pub async fn enqueue_many(tx: &Tx<'_>, events: &[crm_events::Envelope]) -> DbResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let subjects: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    let payloads: Vec<Json<&crm_events::Envelope>> = events.iter().map(Json).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO outbox (id, subject, payload)
             SELECT u.id, u.subject, u.payload FROM unnest($1::text[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS u(id, subject, payload, ord)
             ORDER BY u.ord",
        )
        .await?;
    tx.execute(&stmt, &[&ids, &subjects, &payloads]).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Status history, stats, tags

/// One status change to record.
pub struct StatusChange<'a> {
    pub contact_id: i32,
    pub from: Option<ContactStatus>,
    pub to: ContactStatus,
    pub reason: Option<&'a str>,
}

pub async fn record_status_changes(tx: &Tx<'_>, changes: &[StatusChange<'_>], changed_by: i32) -> DbResult<()> {
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

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusHistoryEntry {
    pub id: i64,
    pub contact_id: i32,
    /// `null` for the status a contact was created with.
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: Option<String>,
    pub changed_by: i32,
    pub changed_at: DateTime<Utc>,
}

/// Newest first, `limit + 1` rows after the cursor id.
pub async fn status_history(tx: &Tx<'_>, contact_id: i32, before_id: Option<i64>, limit: i64) -> DbResult<Vec<StatusHistoryEntry>> {
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
pub async fn count_by_status(tx: &Tx<'_>) -> DbResult<Vec<(String, i64)>> {
    let stmt = tx.prepare_cached("SELECT status, count(*) FROM contacts GROUP BY status").await?;
    Ok(tx.query(&stmt, &[]).await?.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// In `[from, to)`: conversions (lead/prospect -> customer) and contacts that entered lead or
/// prospect (created so, or moved there).
pub async fn conversions(tx: &Tx<'_>, from: DateTime<Utc>, to: DateTime<Utc>) -> DbResult<(i64, i64)> {
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

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TagCount {
    pub tag: String,
    pub contacts: i64,
    pub companies: i64,
}

pub async fn tag_counts(tx: &Tx<'_>) -> DbResult<Vec<TagCount>> {
    let stmt = tx
        .prepare_cached(
            "SELECT tag, count(*) FILTER (WHERE kind = 'contact'), count(*) FILTER (WHERE kind = 'company') FROM (
                 SELECT unnest(tags) AS tag, 'contact' AS kind FROM contacts
                 UNION ALL SELECT unnest(tags), 'company' FROM companies) t
             GROUP BY tag ORDER BY tag LIMIT 1000",
        )
        .await?;
    Ok(tx.query(&stmt, &[]).await?.iter().map(|r| TagCount { tag: r.get(0), contacts: r.get(1), companies: r.get(2) }).collect())
}
