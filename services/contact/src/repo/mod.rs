//! All SQL of contact-service, one module per resource. Every function takes the caller's
//! tenant-scoped transaction (`&TenantTx`: search path = the tenant's schema, then `public`
//! for pg_trgm), so the service layer owns atomicity; columns are always listed explicitly.
//! Errors are [`DbError`]s; the service layer maps them (`ApiError: From<DbError>`).

pub mod companies;
pub mod consent;
pub mod contacts;
pub mod custom_fields;
pub mod merge;
pub mod scoring;
pub mod tags;
pub mod inactivity;
pub mod trash;

use chrono::{DateTime, Utc};
use crm_tenant::{DbError, TenantTx};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

type DbResult<T> = Result<T, DbError>;

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

    async fn rows(&self, tx: &TenantTx) -> DbResult<Vec<Row>> {
        let stmt = tx.prepare_cached(&self.sql).await?;
        tx.query(&stmt, &self.refs()).await
    }
}

fn text(row: &Row, i: usize) -> String {
    row.get::<_, Option<String>>(i).unwrap_or_default()
}

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

fn where_clause(conds: &[String]) -> String {
    if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) }
}

/// Keyset condition and ORDER BY for `column` (text or timestamptz) in `desc` order.
fn keyset(q: &mut Query, conds: &mut Vec<String>, column: &str, is_time: bool, desc: bool, after: Option<&ListCursor>) -> String {
    let (op, dir) = if desc { ("<", "DESC") } else { (">", "ASC") };
    if let Some(c) = after {
        let value = match (is_time, c.s) {
            (true, _) => q.bind(c.ts.unwrap_or_default()),
            (false, Some(number)) => q.bind(number),
            (false, None) => q.bind(c.t.clone().unwrap_or_default()),
        };
        let id = q.bind(c.id);
        conds.push(format!("({column}, c.id) {op} ({value}, {id})"));
    }
    format!("ORDER BY {column} {dir}, c.id {dir}")
}

/// Sets pg_trgm's threshold of the `%` operator (the one a trigram index answers) for the
/// rest of the transaction, on whichever node runs the query: `SET LOCAL`, and on a Citus
/// coordinator `citus.propagate_set_commands = 'local'` so that the setting travels with the
/// transaction to the worker holding the tenant's tables (a `set_config(.., true)` stayed on
/// the coordinator: the worker used the default threshold and fuzzy search found nothing).
/// On plain PostgreSQL the Citus setting is an unused placeholder. Both statements are
/// pipelined (one round trip).
pub async fn set_similarity_threshold(tx: &TenantTx, threshold: f32) -> DbResult<()> {
    if !(0.0..=1.0).contains(&threshold) {
        return Err(DbError::Refused("similarity threshold out of 0..=1"));
    }
    // SET takes no parameters; the value is a number formatted here, never input.
    let set = tx.prepare_cached(&format!("SET LOCAL pg_trgm.similarity_threshold = {threshold}")).await?;
    let propagate = tx.prepare_cached("SET LOCAL citus.propagate_set_commands = 'local'").await?;
    futures::try_join!(tx.execute(&propagate, &[]), tx.execute(&set, &[]))?;
    Ok(())
}

