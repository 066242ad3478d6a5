//! Deals and their stage history: rows, writes, lists (filters, whitelisted sorts, keyset
//! cursors).

use chrono::{DateTime, NaiveDate, Utc};
use crm_client_deal::{PipelineStageInfo, StageHistoryEntry};
use crm_tenant::{DbError, TenantTx};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use crate::domain::{Money, like_pattern, minor_units};


/// Columns of a deal, in [`deal_from`]'s order; every query names the table `d`.
pub(super) const DEAL_COLUMNS: &str = "d.id, d.title, d.description, (d.value * 10000)::int8, d.currency, d.stage_key, d.probability, \
     d.expected_close_date, d.actual_close_date, d.owner_id, d.company_id, d.primary_contact_id, d.source, \
     d.close_reason, d.custom_fields, d.created_at, d.updated_at, d.created_by";

/// A deal as stored.
#[derive(Debug, Clone)]
pub struct DealRow {
    pub id: i32,
    pub fields: DealFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<i32>,
}

/// The writable columns of a deal.
#[derive(Debug, Clone, PartialEq)]
pub struct DealFields {
    pub title: String,
    pub description: Option<String>,
    pub value: Option<Money>,
    pub currency: String,
    pub stage: String,
    pub probability: i32,
    pub expected_close_date: Option<NaiveDate>,
    pub actual_close_date: Option<NaiveDate>,
    pub owner_id: Option<i32>,
    pub company_id: Option<i32>,
    pub primary_contact_id: Option<i32>,
    pub source: Option<String>,
    pub close_reason: Option<String>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
}

pub(super) fn deal_from(row: &Row) -> DealRow {
    let custom: Option<Json<serde_json::Map<String, serde_json::Value>>> = row.get(14);
    DealRow {
        id: row.get(0),
        fields: DealFields {
            title: row.get(1),
            description: row.get(2),
            value: row.get::<_, Option<i64>>(3).map(Money::from_units),
            currency: row.get(4),
            stage: row.get(5),
            probability: row.get(6),
            expected_close_date: row.get(7),
            actual_close_date: row.get(8),
            owner_id: row.get(9),
            company_id: row.get(10),
            primary_contact_id: row.get(11),
            source: row.get(12),
            close_reason: row.get(13),
            custom_fields: custom.map(|j| j.0).unwrap_or_default(),
        },
        created_at: row.get(15),
        updated_at: row.get(16),
        created_by: row.get(17),
    }
}

pub async fn insert_deal(tx: &TenantTx, f: &DealFields, created_by: i32) -> Result<DealRow, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO deals AS d (title, description, value, currency, stage_key, probability, expected_close_date,
                 actual_close_date, owner_id, company_id, primary_contact_id, source, close_reason, custom_fields, created_by, minor_units)
             VALUES ($1, $2, $3::int8::numeric / 10000, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             RETURNING {DEAL_COLUMNS}"
        ))
        .await?;
    let value = f.value.map(Money::units);
    let minor = i16::try_from(minor_units(&f.currency)).unwrap_or(2);
    let custom = Json(&f.custom_fields);
    let row = tx
        .query_one(
            &stmt,
            &[
                &f.title,
                &f.description,
                &value,
                &f.currency,
                &f.stage,
                &f.probability,
                &f.expected_close_date,
                &f.actual_close_date,
                &f.owner_id,
                &f.company_id,
                &f.primary_contact_id,
                &f.source,
                &f.close_reason,
                &custom,
                &created_by,
                &minor,
            ],
        )
        .await?;
    Ok(deal_from(&row))
}

pub async fn update_deal(tx: &TenantTx, id: i32, f: &DealFields) -> Result<DealRow, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE deals AS d SET title = $2, description = $3, value = $4::int8::numeric / 10000, currency = $5, minor_units = $16,
                 stage_key = $6, probability = $7, expected_close_date = $8, actual_close_date = $9, owner_id = $10,
                 company_id = $11, primary_contact_id = $12, source = $13, close_reason = $14, custom_fields = $15,
                 updated_at = now()
             WHERE d.id = $1 RETURNING {DEAL_COLUMNS}"
        ))
        .await?;
    let value = f.value.map(Money::units);
    let minor = i16::try_from(minor_units(&f.currency)).unwrap_or(2);
    let custom = Json(&f.custom_fields);
    let row = tx
        .query_one(
            &stmt,
            &[
                &id,
                &f.title,
                &f.description,
                &value,
                &f.currency,
                &f.stage,
                &f.probability,
                &f.expected_close_date,
                &f.actual_close_date,
                &f.owner_id,
                &f.company_id,
                &f.primary_contact_id,
                &f.source,
                &f.close_reason,
                &custom,
                &minor,
            ],
        )
        .await?;
    Ok(deal_from(&row))
}

/// A live deal (`None` for one in the trash, issue 16).
pub async fn deal_by_id(tx: &TenantTx, id: i32) -> Result<Option<DealRow>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {DEAL_COLUMNS} FROM deals d WHERE d.id = $1 AND d.deleted_at IS NULL")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(deal_from))
}

/// Locks the deal for the rest of the transaction (read, check the rules, write); live
/// deals only (a trashed one is not found, issue 16).
pub async fn deal_for_update(tx: &TenantTx, id: i32) -> Result<Option<DealRow>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {DEAL_COLUMNS} FROM deals d WHERE d.id = $1 AND d.deleted_at IS NULL FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(deal_from))
}

/// Erases the deal for good, trashed or not (its contacts and history go with it); `None`
/// when there is none.
pub async fn delete_deal(tx: &TenantTx, id: i32) -> Result<Option<DealRow>, DbError> {
    let sql = format!("DELETE FROM deals AS d WHERE d.id = $1 RETURNING {DEAL_COLUMNS}");
    Ok(tx.query_opt(sql.as_str(), &[&id]).await?.as_ref().map(deal_from))
}

/// Drops a deleted company from every deal referencing it; returns the changed deals.
pub async fn clear_company(tx: &TenantTx, company_id: i32) -> Result<Vec<DealRow>, DbError> {
    let sql = format!("UPDATE deals AS d SET company_id = NULL, updated_at = now() WHERE d.company_id = $1 RETURNING {DEAL_COLUMNS}");
    Ok(tx.query(sql.as_str(), &[&company_id]).await?.iter().map(deal_from).collect())
}

/// Drops a deleted contact from every deal: as primary contact and from the deal's
/// contacts. Returns the changed deals.
pub async fn clear_contact(tx: &TenantTx, contact_id: i32) -> Result<Vec<DealRow>, DbError> {
    let sql = format!(
        "WITH removed AS (DELETE FROM deal_contacts WHERE contact_id = $1 RETURNING deal_id)
         UPDATE deals AS d
            SET primary_contact_id = CASE WHEN d.primary_contact_id = $1 THEN NULL ELSE d.primary_contact_id END,
                updated_at = now()
          WHERE d.primary_contact_id = $1 OR d.id IN (SELECT deal_id FROM removed)
         RETURNING {DEAL_COLUMNS}"
    );
    Ok(tx.query(sql.as_str(), &[&contact_id]).await?.iter().map(deal_from).collect())
}

/// `(id, title, stage, value)` of the live deals among `ids` (a trashed deal is not found by
/// other services' lookups, like by GET).
pub async fn basics_by_ids(tx: &TenantTx, ids: &[i32]) -> Result<Vec<(i32, String, String, Option<Money>)>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT d.id, d.title, d.stage_key, (d.value * 10000)::int8 FROM deals d WHERE d.id = ANY($1) AND d.deleted_at IS NULL ORDER BY d.id",
        )
        .await?;
    let rows = tx.query(&stmt, &[&ids]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get::<_, Option<i64>>(3).map(Money::from_units))).collect())
}


// ---------------------------------------------------------------------------------------
// Stage history

pub async fn insert_history(tx: &TenantTx, deal_id: i32, from: Option<&str>, to: &str, by: i32) -> Result<(), DbError> {
    let stmt = tx
        .prepare_cached("INSERT INTO deal_stage_history (deal_id, from_stage, to_stage, changed_by) VALUES ($1, $2, $3, $4)")
        .await?;
    tx.execute(&stmt, &[&deal_id, &from, &to, &by]).await?;
    Ok(())
}

pub async fn history(tx: &TenantTx, deal_id: i32) -> Result<Vec<StageHistoryEntry>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT from_stage, to_stage, changed_by, changed_at FROM deal_stage_history WHERE deal_id = $1 ORDER BY id",
        )
        .await?;
    let rows = tx.query(&stmt, &[&deal_id]).await?;
    Ok(rows
        .iter()
        .map(|r| StageHistoryEntry { from_stage: r.get(0), to_stage: r.get(1), changed_by: r.get(2), changed_at: r.get(3) })
        .collect())
}


// ---------------------------------------------------------------------------------------
// Lists: filters, whitelisted sorts, keyset cursors

/// Filters of `GET /deals` (API.md), all optional and combined with AND.
#[derive(Debug, Default)]
pub struct DealFilter {
    pub stage: Option<String>,
    pub owner_id: Option<i32>,
    pub company_id: Option<i32>,
    /// Primary contact or one of the deal's contacts.
    pub contact_id: Option<i32>,
    pub min_value: Option<Money>,
    pub max_value: Option<Money>,
    /// Inclusive bounds on `expected_close_date`.
    pub expected_close_after: Option<NaiveDate>,
    pub expected_close_before: Option<NaiveDate>,
    /// Substring of the title, case-insensitive.
    pub search: Option<String>,
    pub currency: Option<String>,
}

/// Sortable fields: the name in `?sort=` and the SQL expression, which is also an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    Value,
    ExpectedCloseDate,
    Title,
    Probability,
}

impl SortKey {
    pub const NAMES: [&'static str; 6] = ["created_at", "updated_at", "value", "expected_close_date", "title", "probability"];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "created_at" => Self::CreatedAt,
            "updated_at" => Self::UpdatedAt,
            "value" => Self::Value,
            "expected_close_date" => Self::ExpectedCloseDate,
            "title" => Self::Title,
            "probability" => Self::Probability,
            _ => return None,
        })
    }

    /// Null values sort as the lowest value (no value) or the latest date (no date).
    fn expr(self) -> &'static str {
        match self {
            Self::CreatedAt => "d.created_at",
            Self::UpdatedAt => "d.updated_at",
            Self::Value => "coalesce(d.value, -1)",
            Self::ExpectedCloseDate => "coalesce(d.expected_close_date, 'infinity'::date)",
            Self::Title => "d.title",
            Self::Probability => "d.probability",
        }
    }

    /// The cursor position of `row` under this sort.
    pub fn value_of(self, row: &DealRow) -> SortValue {
        match self {
            Self::CreatedAt => SortValue::Time(row.created_at),
            Self::UpdatedAt => SortValue::Time(row.updated_at),
            Self::Value => SortValue::Units(row.fields.value.map_or(-Money::SCALE, Money::units)),
            Self::ExpectedCloseDate => SortValue::Date(row.fields.expected_close_date),
            Self::Title => SortValue::Text(row.fields.title.clone()),
            Self::Probability => SortValue::Int(row.fields.probability),
        }
    }
}

/// The sort value of the last row of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortValue {
    Time(DateTime<Utc>),
    /// Ten-thousandths (`-1` main unit: no value).
    Units(i64),
    Date(Option<NaiveDate>),
    Text(String),
    Int(i32),
}

/// Keyset position: the sort it belongs to (`-value`), the last row's sort value and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealCursor {
    pub sort: String,
    pub v: SortValue,
    pub id: i32,
}

/// A WHERE clause under construction with its parameters.
#[derive(Default)]
struct Query {
    clauses: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Query {
    /// Binds `value`, returning its placeholder.
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    fn where_sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!("WHERE {}", self.clauses.join(" AND ")) }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }

    /// Common shapes (up to 4 conditions: "not in the trash", cursor included) use cached
    /// prepared statements;
    /// rarer combinations are prepared per call, so the per-connection statement cache
    /// stays small whatever clients send.
    async fn run(&self, tx: &TenantTx, sql: &str) -> Result<Vec<Row>, DbError> {
        if self.clauses.len() <= 4 {
            let stmt = tx.prepare_cached(sql).await?;
            tx.query(&stmt, &self.params()).await
        } else {
            tx.query(sql, &self.params()).await
        }
    }

    /// The list's conditions; always "not in the trash" (issue 16) first.
    fn filtered(f: &DealFilter) -> Self {
        let mut q = Self::default();
        q.and("d.deleted_at IS NULL".to_owned());
        if let Some(stage) = &f.stage {
            let p = q.bind(stage.clone());
            q.and(format!("d.stage_key = {p}"));
        }
        if let Some(owner) = f.owner_id {
            let p = q.bind(owner);
            q.and(format!("d.owner_id = {p}"));
        }
        if let Some(company) = f.company_id {
            let p = q.bind(company);
            q.and(format!("d.company_id = {p}"));
        }
        if let Some(contact) = f.contact_id {
            let p = q.bind(contact);
            q.and(format!(
                "(d.primary_contact_id = {p} OR d.id IN (SELECT dc.deal_id FROM deal_contacts dc WHERE dc.contact_id = {p}))"
            ));
        }
        if let Some(min) = f.min_value {
            let p = q.bind(min.units());
            q.and(format!("d.value >= {p}::int8::numeric / 10000"));
        }
        if let Some(max) = f.max_value {
            let p = q.bind(max.units());
            q.and(format!("d.value <= {p}::int8::numeric / 10000"));
        }
        if let Some(after) = f.expected_close_after {
            let p = q.bind(after);
            q.and(format!("d.expected_close_date >= {p}"));
        }
        if let Some(before) = f.expected_close_before {
            let p = q.bind(before);
            q.and(format!("d.expected_close_date <= {p}"));
        }
        if let Some(search) = &f.search {
            let p = q.bind(like_pattern(&search.to_lowercase()));
            q.and(format!("lower(d.title) LIKE {p}"));
        }
        if let Some(currency) = &f.currency {
            let p = q.bind(currency.clone());
            q.and(format!("d.currency = {p}"));
        }
        q
    }
}

/// One page (`limit + 1` rows, for [`crm_web::Page::from_overfetch`]).
pub async fn list_deals(
    tx: &TenantTx,
    filter: &DealFilter,
    sort: SortKey,
    descending: bool,
    after: Option<&DealCursor>,
    limit: i64,
) -> Result<Vec<DealRow>, DbError> {
    let mut q = Query::filtered(filter);
    let expr = sort.expr();
    let (cmp, dir) = if descending { ("<", "DESC") } else { (">", "ASC") };
    if let Some(cursor) = after {
        let value = match &cursor.v {
            SortValue::Time(t) => q.bind(*t),
            SortValue::Units(c) => format!("{}::int8::numeric / 10000", q.bind(*c)),
            SortValue::Date(d) => format!("coalesce({}::date, 'infinity'::date)", q.bind(*d)),
            SortValue::Text(s) => format!("{}::text", q.bind(s.clone())),
            SortValue::Int(i) => q.bind(*i),
        };
        let id = q.bind(cursor.id);
        q.and(format!("({expr}, d.id) {cmp} ({value}, {id})"));
    }
    let limit = q.bind(limit + 1);
    let sql = format!("SELECT {DEAL_COLUMNS} FROM deals d {} ORDER BY {expr} {dir}, d.id {dir} LIMIT {limit}", q.where_sql());
    Ok(q.run(tx, &sql).await?.iter().map(deal_from).collect())
}

pub async fn count_deals(tx: &TenantTx, filter: &DealFilter) -> Result<i64, DbError> {
    let q = Query::filtered(filter);
    let rows = q.run(tx, &format!("SELECT count(*) FROM deals d {}", q.where_sql())).await?;
    Ok(rows.first().map_or(0, |r| r.get(0)))
}


// ---------------------------------------------------------------------------------------
// Moving the deals of a stage being deleted

/// Moves every deal of stage `from` to `to` (with `to`'s probability), recording each move
/// in the stage history. Returns the moved deals.
pub async fn move_stage_deals(tx: &TenantTx, from: &str, to: &PipelineStageInfo, by: i32) -> Result<Vec<DealRow>, DbError> {
    let sql = format!(
        "UPDATE deals AS d SET stage_key = $2, probability = $3, updated_at = now() WHERE d.stage_key = $1
         RETURNING {DEAL_COLUMNS}"
    );
    let moved: Vec<DealRow> = tx.query(sql.as_str(), &[&from, &to.key, &to.probability]).await?.iter().map(deal_from).collect();
    let ids: Vec<i32> = moved.iter().map(|d| d.id).collect();
    tx.execute(
        "INSERT INTO deal_stage_history (deal_id, from_stage, to_stage, changed_by) SELECT unnest($1::int4[]), $2, $3, $4",
        &[&ids, &from, &to.key, &by],
    )
    .await?;
    Ok(moved)
}
