use std::ops::Deref;
use std::time::Duration;

use crm_database::ident::PLATFORM_SCHEMA;
use crm_database::{DbHealth, Pool, PoolError, PoolStats, health_check};
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, Statement, ToStatement};

use crate::{SchemaName, TenantId};

/// What can go wrong reaching the database through [`TenantDb`].
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had (Postgres down, pool exhausted past the wait timeout).
    #[error("database unavailable: {0}")]
    Unavailable(#[from] PoolError),
    #[error(transparent)]
    Query(#[from] tokio_postgres::Error),
    /// A statement request code may not run (see [`Scoped`]); a bug, answered as 500.
    #[error("refused: {0}")]
    Refused(&'static str),
}

/// The database as request code sees it: a source of scoped transactions only.
///
/// ```compile_fail
/// // There is no way to reach a raw pooled connection (and so a session-level
/// // `SET search_path`) from a TenantDb or a DbConn:
/// async fn leak(db: crm_tenant::TenantDb) {
///     let conn = db.connect().await.unwrap();
///     conn.client.simple_query("SET search_path = tenant_x").await.unwrap();
/// }
/// ```
#[derive(Clone)]
pub struct TenantDb {
    pool: Pool,
}

impl TenantDb {
    /// Takes the pool built by the service's start-up code. Only system tasks wired in
    /// `main` (migrations, the outbox relay) keep a handle on the pool itself.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Checks out a connection. It can only be used through [`DbConn::tenant`] or
    /// [`DbConn::platform`].
    pub async fn connect(&self) -> Result<DbConn, DbError> {
        Ok(DbConn { client: self.pool.get().await? })
    }

    pub async fn health(&self, timeout: Duration) -> DbHealth {
        health_check(&self.pool, timeout).await
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats::of(&self.pool)
    }
}

/// A pooled connection with no query methods of its own.
pub struct DbConn {
    client: Object,
}

/// For system tasks holding the pool (the outbox relay): the connection becomes usable
/// through scoped transactions only.
impl From<Object> for DbConn {
    fn from(client: Object) -> Self {
        Self { client }
    }
}

impl DbConn {
    /// Begins a transaction whose search path is the tenant's schema, set with
    /// `set_config(.., is_local => true)` so it ends with the transaction.
    pub async fn tenant(&mut self, tenant: &TenantId) -> Result<TenantTx<'_>, DbError> {
        let schema = tenant.schema();
        let tx = begin_scoped(&mut self.client, schema.as_str()).await?;
        Ok(TenantTx { inner: Scoped { tx }, tenant: *tenant, schema })
    }

    /// Begins a transaction scoped to the `platform` schema (tenant registry, invitations).
    pub async fn platform(&mut self) -> Result<PlatformTx<'_>, DbError> {
        Ok(PlatformTx { inner: Scoped { tx: begin_scoped(&mut self.client, PLATFORM_SCHEMA).await? } })
    }
}

async fn begin_scoped<'a>(client: &'a mut Object, schema: &str) -> Result<Transaction<'a>, DbError> {
    let tx = client.transaction().await?;
    let stmt = tx.prepare_cached("SELECT set_config('search_path', $1 || ', public', true)").await?;
    // `public` second: extension functions (pg_trgm) live there; no table is ever created in it.
    tx.execute(&stmt, &[&schema]).await?;
    Ok(tx)
}

/// The query methods of a scoped transaction ([`TenantTx`], [`PlatformTx`]): the same
/// shapes as `tokio_postgres::Transaction`'s, but no raw transaction is reachable and a
/// statement that touches `search_path` is refused with [`DbError::Refused`] before it is
/// sent (the scope is set once, transaction-locally, by [`DbConn`]; a session-level
/// `SET search_path` would leak to the next checkout of the pooled connection).
///
/// Repositories take `&TenantTx` and use these; there is no other way to run SQL in a
/// tenant schema from request code:
///
/// ```compile_fail
/// // A repository cannot reach the raw transaction, so it cannot `batch_execute` (simple
/// // protocol, several statements) nor hand the transaction to code that would.
/// async fn repo(tx: &crm_tenant::TenantTx<'_>) {
///     tx.batch_execute("SET search_path = tenant_x").await.unwrap();
/// }
/// ```
///
/// ```compile_fail
/// // Nor is there a `Deref` to `tokio_postgres::Transaction` to borrow it from.
/// fn raw<'a>(tx: &'a crm_tenant::TenantTx<'a>) -> &'a deadpool_postgres::Transaction<'a> {
///     &**tx
/// }
/// ```
pub struct Scoped<'a> {
    tx: Transaction<'a>,
}

/// SQL a scoped transaction accepts: text (checked) or a statement prepared through
/// [`Scoped::prepare_cached`] (checked when prepared). Sealed.
pub trait Sql: sealed::Sealed + ToStatement + Sync {
    #[doc(hidden)]
    fn check(&self) -> Result<(), DbError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for tokio_postgres::Statement {}
}

impl Sql for str {
    fn check(&self) -> Result<(), DbError> {
        check_sql(self)
    }
}

impl Sql for Statement {
    fn check(&self) -> Result<(), DbError> {
        Ok(())
    }
}

/// Refuses SQL that reads or writes the search path: only [`DbConn`] sets it.
fn check_sql(sql: &str) -> Result<(), DbError> {
    const NEEDLE: &[u8] = b"search_path";
    let touches = sql.as_bytes().windows(NEEDLE.len()).any(|w| w.eq_ignore_ascii_case(NEEDLE));
    if touches { Err(DbError::Refused("statements may not touch search_path; the scope is set by crm_tenant")) } else { Ok(()) }
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Scoped<'_> {
    /// Prepares `sql` once per pooled connection (deadpool's statement cache).
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, DbError> {
        check_sql(sql)?;
        Ok(self.tx.prepare_cached(sql).await?)
    }

    /// As [`Scoped::prepare_cached`], with explicit parameter types.
    pub async fn prepare_typed_cached(&self, sql: &str, types: &[Type]) -> Result<Statement, DbError> {
        check_sql(sql)?;
        Ok(self.tx.prepare_typed_cached(sql, types).await?)
    }

    pub async fn query<T: Sql + ?Sized>(&self, sql: &T, params: &Params<'_>) -> Result<Vec<Row>, DbError> {
        sql.check()?;
        Ok(self.tx.query(sql, params).await?)
    }

    /// Exactly one row, else an error (use [`Scoped::query_opt`] for "maybe one").
    pub async fn query_one<T: Sql + ?Sized>(&self, sql: &T, params: &Params<'_>) -> Result<Row, DbError> {
        sql.check()?;
        Ok(self.tx.query_one(sql, params).await?)
    }

    pub async fn query_opt<T: Sql + ?Sized>(&self, sql: &T, params: &Params<'_>) -> Result<Option<Row>, DbError> {
        sql.check()?;
        Ok(self.tx.query_opt(sql, params).await?)
    }

    /// The number of rows changed.
    pub async fn execute<T: Sql + ?Sized>(&self, sql: &T, params: &Params<'_>) -> Result<u64, DbError> {
        sql.check()?;
        Ok(self.tx.execute(sql, params).await?)
    }
}

/// A transaction scoped to one tenant's schema. Dropped without [`TenantTx::commit`], it
/// rolls back. Queries through [`Scoped`] (it derefs to it).
pub struct TenantTx<'a> {
    inner: Scoped<'a>,
    tenant: TenantId,
    schema: SchemaName,
}

impl<'a> TenantTx<'a> {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }

    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    pub async fn commit(self) -> Result<(), DbError> {
        Ok(self.inner.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        Ok(self.inner.tx.rollback().await?)
    }
}

impl<'a> Deref for TenantTx<'a> {
    type Target = Scoped<'a>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

/// A transaction scoped to the `platform` schema. Queries through [`Scoped`].
pub struct PlatformTx<'a> {
    inner: Scoped<'a>,
}

impl<'a> PlatformTx<'a> {
    /// Creates `tenant`'s schema if needed and applies every tenant migration set, inside
    /// this transaction: the tenant's registry row, its schema and its tables commit or
    /// vanish together. The transaction stays scoped to `platform` afterwards.
    pub async fn provision_schema(&self, tenant: &TenantId) -> Result<(), crm_database::migrate::MigrateError> {
        crm_database::migrate::provision_schema(&self.inner.tx, tenant.schema().as_str()).await?;
        self.rescope().await
    }

    /// Drops `tenant`'s schema with everything in it (and its migration registry rows),
    /// inside this transaction.
    pub async fn drop_schema(&self, tenant: &TenantId) -> Result<(), crm_database::migrate::MigrateError> {
        crm_database::migrate::drop_schema(&self.inner.tx, tenant.schema().as_str()).await?;
        self.rescope().await
    }

    /// Back to the `platform` scope after DDL that moved the search path.
    async fn rescope(&self) -> Result<(), crm_database::migrate::MigrateError> {
        let stmt = self.inner.tx.prepare_cached("SELECT set_config('search_path', $1 || ', public', true)").await?;
        self.inner.tx.execute(&stmt, &[&PLATFORM_SCHEMA]).await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), DbError> {
        Ok(self.inner.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        Ok(self.inner.tx.rollback().await?)
    }
}

impl<'a> Deref for PlatformTx<'a> {
    type Target = Scoped<'a>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sql_touching_the_search_path_is_refused() {
        for sql in ["SET search_path = x", "set SEARCH_PATH to x", "SELECT set_config('search_path', 'x', false)", "SHOW search_path"] {
            assert!(super::check_sql(sql).is_err(), "{sql}");
        }
        assert!(super::check_sql("SELECT * FROM contacts WHERE name = $1").is_ok());
    }
}
