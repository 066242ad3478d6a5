//! `companies`: CRUD, hierarchy, lookups by id and name.

use crm_client_contact::{Address, CompanyBasicInfo, CompanyDetails, CustomFields};
use crm_tenant::TenantTx;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::{DbResult, ListCursor, Query, keyset, text, where_clause};
use crate::domain::CompanyWrite;

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

pub(crate) fn company_cols(alias: &str) -> String {
    COMPANY_FIELDS.iter().map(|f| format!("{alias}.{f}")).collect::<Vec<_>>().join(", ")
}

pub(crate) fn company_from(row: &Row) -> CompanyDetails {
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

pub async fn insert_company(tx: &TenantTx, w: &CompanyWrite, created_by: i32) -> DbResult<CompanyDetails> {
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

/// A live company (`None` for one in the trash, issue 16).
pub async fn company_by_id(tx: &TenantTx, id: i32) -> DbResult<Option<CompanyDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {} FROM companies c WHERE c.id = $1 AND c.deleted_at IS NULL", company_cols("c"))).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(company_from))
}

/// Locks the row for the rest of the transaction (read, check, write); live companies only.
pub async fn company_for_update(tx: &TenantTx, id: i32) -> DbResult<Option<CompanyDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {} FROM companies c WHERE c.id = $1 AND c.deleted_at IS NULL FOR UPDATE", company_cols("c"))).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(company_from))
}

/// Whether a live company has this id (a trashed one cannot be referenced anew).
pub async fn company_exists(tx: &TenantTx, id: i32) -> DbResult<bool> {
    let stmt = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1 AND deleted_at IS NULL)").await?;
    Ok(tx.query_one(&stmt, &[&id]).await?.get(0))
}

pub async fn update_company(tx: &TenantTx, id: i32, w: &CompanyWrite) -> DbResult<CompanyDetails> {
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

/// Erases the company for good, trashed or not: subsidiaries lose their parent and contacts
/// their company (ON DELETE SET NULL).
pub async fn delete_company(tx: &TenantTx, id: i32) -> DbResult<bool> {
    Ok(tx.execute("DELETE FROM companies WHERE id = $1", &[&id]).await? == 1)
}

pub async fn companies_basic(tx: &TenantTx, ids: &[i32]) -> DbResult<Vec<CompanyBasicInfo>> {
    // Trashed companies are not found (issue 16: hidden from lookups like from GET).
    let stmt = tx.prepare_cached("SELECT id, name FROM companies WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id").await?;
    Ok(tx.query(&stmt, &[&ids]).await?.iter().map(|r| CompanyBasicInfo { id: r.get(0), name: r.get(1) }).collect())
}

/// Serializes changes of the company tree within the tenant, so two concurrent re-parentings
/// cannot build a cycle between them.
pub async fn lock_company_tree(tx: &TenantTx) -> DbResult<()> {
    let stmt = tx.prepare_cached("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':company_tree'))").await?;
    tx.execute(&stmt, &[]).await?;
    Ok(())
}

/// Whether `id` is `parent` or one of its ancestors (making `parent` the parent of `id`
/// would close a cycle).
pub async fn is_ancestor_or_self(tx: &TenantTx, id: i32, parent: i32) -> DbResult<bool> {
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
    /// Trimmed; matched accent- and case-insensitively by substring or trigram similarity on
    /// the name (a word or prefix of it for one or two letters).
    pub search: Option<String>,
    pub industry: Option<String>,
    pub size_category: Option<String>,
    pub parent_company_id: Option<i32>,
    pub tags: Vec<String>,
    /// `?cf.<key>=<value>` filters (issue 16), every one must match.
    pub custom: Vec<crate::service::custom_fields::CfFilter>,
}

/// Sortable company fields (the whitelist of `?sort=`).
pub const COMPANY_SORTS: [&str; 3] = ["name", "created_at", "updated_at"];

/// The conditions of a company list; always "not in the trash" (issue 16) first.
pub(super) fn company_where(q: &mut Query, f: &CompanyFilter) -> Vec<String> {
    let mut conds = vec!["c.deleted_at IS NULL".to_owned()];
    if let Some(s) = &f.search {
        // Accents and case folded on both sides (contact_fold: unaccent + lower). Three
        // letters and more: substring or trigram-similar (the folded trigram index); fewer,
        // where trigrams cannot help: a word of the name (one CJK character is one) or a
        // prefix of the name (the folded prefix index).
        let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        if s.chars().count() >= 3 {
            let (p1, p2) = (q.bind(s.clone()), q.bind(format!("%{escaped}%")));
            conds.push(format!("(contact_fold(c.name) % contact_fold({p1}) OR contact_fold(c.name) LIKE contact_fold({p2}))"));
        } else {
            let (p1, p2) = (q.bind(s.clone()), q.bind(format!("{escaped}%")));
            conds.push(format!(
                "((c.search_words @> contact_search_words({p1}, NULL, NULL, NULL) AND cardinality(contact_search_words({p1}, NULL, NULL, NULL)) > 0) \
                 OR contact_fold(c.name) LIKE contact_fold({p2}))"
            ));
        }
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
    super::custom_fields::cf_conditions(q, &mut conds, "c", &f.custom);
    conds
}

/// One page (`limit + 1` rows: the extra one tells there is a next page).
pub async fn list_companies(
    tx: &TenantTx,
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

pub async fn count_companies(tx: &TenantTx, f: &CompanyFilter) -> DbResult<i64> {
    let mut q = Query::default();
    let conds = company_where(&mut q, f);
    q.sql = format!("SELECT count(*) FROM companies c {}", where_clause(&conds));
    Ok(q.rows(tx).await?.first().map(|r| r.get(0)).unwrap_or(0))
}

/// Companies by name, case-insensitively (the import's `company` column): lowercased name -> id
/// (the oldest company when several share a name).
pub async fn companies_by_names(tx: &TenantTx, lower_names: &[String]) -> DbResult<Vec<(String, i32)>> {
    let stmt = tx
        .prepare_cached("SELECT DISTINCT ON (lower(name)) lower(name), id FROM companies WHERE lower(name) = ANY($1) AND deleted_at IS NULL ORDER BY lower(name), id")
        .await?;
    Ok(tx.query(&stmt, &[&lower_names]).await?.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The companies of these ids that exist: (id, lowercased name).
pub async fn company_names(tx: &TenantTx, ids: &[i32]) -> DbResult<Vec<(i32, String)>> {
    let stmt = tx.prepare_cached("SELECT id, lower(name) FROM companies WHERE id = ANY($1) AND deleted_at IS NULL").await?;
    Ok(tx.query(&stmt, &[&ids]).await?.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Creates companies with just a name (import), returning them.
pub async fn insert_companies_named(tx: &TenantTx, names: &[String], created_by: i32) -> DbResult<Vec<CompanyDetails>> {
    let sql = format!(
        "INSERT INTO companies AS c (name, created_by) SELECT n, $2 FROM unnest($1::text[]) AS n RETURNING {}",
        company_cols("c")
    );
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query(&stmt, &[&names, &created_by]).await?.iter().map(company_from).collect())
}

