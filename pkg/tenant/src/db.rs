use std::ops::Deref;
use std::time::Duration;

use crm_database::ident::PLATFORM_SCHEMA;
use crm_database::{DbHealth, Pool, PoolError, PoolStats, health_check};
use deadpool_postgres::{Object, Transaction};

use crate::{SchemaName, TenantId};

/// What can go wrong reaching the database through [`TenantDb`].
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had (Postgres down, pool exhausted past the wait timeout).
    #[error("database unavailable: {0}")]
    Unavailable(#[from] PoolError),
    #[error(transparent)]
    Query(#[from] tokio_postgres::Error),
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

impl DbConn {
    /// Begins a transaction whose search path is the tenant's schema, set with
    /// `set_config(.., is_local => true)` so it ends with the transaction.
    pub async fn tenant(&mut self, tenant: &TenantId) -> Result<TenantTx<'_>, DbError> {
        let schema = tenant.schema();
        let tx = begin_scoped(&mut self.client, schema.as_str()).await?;
        Ok(TenantTx { tx, tenant: *tenant, schema })
    }

    /// Begins a transaction scoped to the `platform` schema (tenant registry, invitations).
    pub async fn platform(&mut self) -> Result<PlatformTx<'_>, DbError> {
        Ok(PlatformTx { tx: begin_scoped(&mut self.client, PLATFORM_SCHEMA).await? })
    }
}

async fn begin_scoped<'a>(client: &'a mut Object, schema: &str) -> Result<Transaction<'a>, DbError> {
    let tx = client.transaction().await?;
    let stmt = tx.prepare_cached("SELECT set_config('search_path', $1 || ', public', true)").await?;
    // `public` second: extension functions (pg_trgm) live there; no table is ever created in it.
    tx.execute(&stmt, &[&schema]).await?;
    Ok(tx)
}

/// A transaction scoped to one tenant's schema. Dropped without [`TenantTx::commit`], it
/// rolls back. Derefs to the deadpool transaction for queries (`prepare_cached`, `query`...).
pub struct TenantTx<'a> {
    tx: Transaction<'a>,
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
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        Ok(self.tx.rollback().await?)
    }
}

impl<'a> Deref for TenantTx<'a> {
    type Target = Transaction<'a>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

/// A transaction scoped to the `platform` schema.
pub struct PlatformTx<'a> {
    tx: Transaction<'a>,
}

impl<'a> PlatformTx<'a> {
    pub async fn commit(self) -> Result<(), DbError> {
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        Ok(self.tx.rollback().await?)
    }
}

impl<'a> Deref for PlatformTx<'a> {
    type Target = Transaction<'a>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}
