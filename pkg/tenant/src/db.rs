use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crm_database::ident::PLATFORM_SCHEMA;
use crm_database::{DbHealth, Lsn, Pool, PoolError, PoolStats, health_check, replica_health};
use deadpool_postgres::Object;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, SimpleQueryMessage, Statement, ToStatement};

use crate::read::{self, Replica, RequestReads, UserKey};
use crate::{SchemaName, TenantId};

/// Connections found closed by their `BEGIN` that [`TenantDb`] replaces before giving up.
const BEGIN_RETRIES: u32 = 3;

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
/// A transaction owns its pooled connection and gives it back when it ends (commit,
/// rollback, or drop): no connection is held after the transaction, so a call to another
/// service made after `commit` cannot keep one checked out. (Holding connections across
/// remote calls starved the shared pool under load: requests waited on a service that
/// waited on the pool.)
///
/// ```compile_fail
/// // There is no way to reach a raw pooled connection (and so a session-level
/// // `SET search_path`) from a TenantDb or a transaction:
/// async fn leak(db: crm_tenant::TenantDb, t: crm_tenant::TenantId) {
///     let tx = db.tenant(&t).await.unwrap();
///     tx.client.simple_query("SET search_path = tenant_x").await.unwrap();
/// }
/// ```
#[derive(Clone)]
pub struct TenantDb {
    pool: Pool,
    /// The read replica (`DATABASE_READ_URL`), if one is configured.
    replica: Option<Arc<Replica>>,
}

/// `BEGIN` of a lag-tolerant read, on the replica or on the primary alike.
const BEGIN_READ_ONLY: &str = "BEGIN READ ONLY";

impl TenantDb {
    /// Takes the pool built by the service's start-up code. Only system tasks wired in
    /// `main` (migrations) keep a handle on the pool itself.
    pub fn new(pool: Pool) -> Self {
        Self { pool, replica: None }
    }

    /// Adds a read pool on a streaming replica of the primary: [`TenantDb::tenant_read`]
    /// then reads there (see [`crate::read`] for the rule that keeps a user's reads
    /// consistent with the user's writes).
    pub fn with_read_replica(mut self, read_pool: Pool) -> Self {
        self.replica = Some(Arc::new(Replica::new(read_pool)));
        self
    }

    /// Whether a read replica is configured.
    pub fn has_read_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// The read rule of one HTTP request acting for `user` (from its verified token), whose
    /// client saw writes up to `after` (its `Crm-Lsn`): `None` when no replica is configured
    /// (nothing to track). Installed around the handler with [`RequestReads::scope`].
    pub fn request_reads(&self, user: Option<UserKey>, after: Option<Lsn>) -> Option<Arc<RequestReads>> {
        Some(Arc::new(RequestReads::new(self.replica.clone()?, user, after)))
    }

    /// Begins a read-only transaction (`BEGIN READ ONLY`) scoped to the tenant's schema, for
    /// a read that tolerates replication lag: lists, search, reports, exports; never a read
    /// that decides a write. A user's reads still show that user's writes when the request
    /// is tracked (it is, behind the runtime's middleware; see [`crate::read`]).
    ///
    /// Served by the replica when one is configured, reachable, and has replayed the newest
    /// write the current request knows of (its own commits, its client's `Crm-Lsn`, its
    /// user's recent writes in this process); else by the primary, in the same kind of
    /// read-only transaction. The replica's replay position comes back with its `BEGIN`: one
    /// round trip, as on the primary.
    pub async fn tenant_read(&self, tenant: &TenantId) -> Result<TenantTx, DbError> {
        let schema = tenant.schema();
        if let Some(replica) = &self.replica
            && !replica.avoided()
        {
            match self.begin_on_replica(replica, schema.as_str()).await {
                Ok(Some(inner)) => return Ok(TenantTx { inner, tenant: *tenant, schema }),
                Ok(None) => {}
                Err(e) => replica.failed(&e),
            }
        }
        let inner = self.begin_with(schema.as_str(), BEGIN_READ_ONLY, false).await?;
        Ok(TenantTx { inner, tenant: *tenant, schema })
    }

    /// A read transaction on the replica, or `None` when it has not replayed far enough.
    async fn begin_on_replica(&self, replica: &Replica, schema: &str) -> Result<Option<Scoped>, DbError> {
        let needed = read::needed();
        let mut attempts = 0;
        let (scoped, replayed) = loop {
            match Scoped::begin_replica(replica.pool.get().await?, schema).await {
                Err(DbError::Query(e)) if e.is_closed() && attempts < BEGIN_RETRIES => attempts += 1,
                result => break result?,
            }
        };
        replica.succeeded();
        // A NULL replay position: the server is not in recovery (a primary), so it shows its
        // own commits; `/health` reports that it is no replica.
        match (needed, replayed) {
            (Some(needed), Some(replayed)) if replayed < needed => {
                replica.behind.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%needed, %replayed, "read replica behind the request's writes: read on the primary");
                drop(scoped);
                Ok(None)
            }
            _ => Ok(Some(scoped)),
        }
    }

    /// Begins a transaction whose search path is the tenant's schema, set with
    /// `set_config(.., is_local => true)` so it ends with the transaction. One round trip.
    pub async fn tenant(&self, tenant: &TenantId) -> Result<TenantTx, DbError> {
        let schema = tenant.schema();
        let inner = self.begin(schema.as_str(), "BEGIN").await?;
        Ok(TenantTx { inner, tenant: *tenant, schema })
    }

    /// A transaction on the primary. When a replica is configured and the current request is
    /// tracked, its commit reports the commit's WAL position to the request (see [`crate::read`]).
    async fn begin(&self, schema: &str, begin: &'static str) -> Result<Scoped, DbError> {
        let tracked = self.replica.is_some() && read::tracking();
        self.begin_with(schema, begin, tracked).await
    }

    /// As [`TenantDb::tenant`], read only and `REPEATABLE READ`: every statement sees the
    /// same snapshot of the tenant (a consistent export across tables written meanwhile).
    pub async fn tenant_snapshot(&self, tenant: &TenantId) -> Result<TenantTx, DbError> {
        let schema = tenant.schema();
        let inner = self.begin(schema.as_str(), "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
        Ok(TenantTx { inner, tenant: *tenant, schema })
    }

    /// Begins a transaction scoped to the `platform` schema (tenant registry, invitations).
    pub async fn platform(&self) -> Result<PlatformTx, DbError> {
        Ok(PlatformTx { inner: self.begin(PLATFORM_SCHEMA, "BEGIN").await? })
    }

    /// A checkout runs no query (the pool only asks whether a connection has closed), so a
    /// connection whose server went away since its last use is found out by its `BEGIN`:
    /// nothing has run yet, so that is retried on another connection (the failed one is
    /// closed and the pool drops it), a few times at most.
    async fn begin_with(&self, schema: &str, begin: &'static str, tracked: bool) -> Result<Scoped, DbError> {
        let mut attempts = 0;
        loop {
            match Scoped::begin(self.pool.get().await?, schema, begin, tracked).await {
                Err(DbError::Query(e)) if e.is_closed() && attempts < BEGIN_RETRIES => attempts += 1,
                result => return result,
            }
        }
    }

    /// The primary's health, with the replica's (recovery, lag, whether reads go to it)
    /// when one is configured; both checked at once.
    pub async fn health(&self, timeout: Duration) -> DbHealth {
        let Some(replica) = &self.replica else { return health_check(&self.pool, timeout).await };
        let (mut health, mut of_replica) =
            tokio::join!(health_check(&self.pool, timeout), replica_health(&self.pool, &replica.pool, timeout));
        of_replica.serving_reads = of_replica.healthy && !replica.avoided();
        health.replica = Some(of_replica);
        health
    }

    /// Reads served by the primary because the replica had not replayed the request's
    /// writes yet (since start; 0 without a replica).
    pub fn reads_behind_replica(&self) -> u64 {
        self.replica.as_ref().map_or(0, |r| r.behind.load(Ordering::Relaxed))
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats::of(&self.pool)
    }
}

/// The query methods of a scoped transaction ([`TenantTx`], [`PlatformTx`]): the same
/// shapes as `tokio_postgres::Transaction`'s, but no raw transaction is reachable and a
/// statement that touches `search_path` is refused with [`DbError::Refused`] before it is
/// sent (the scope is set once, transaction-locally, by [`TenantDb`]; a session-level
/// `SET search_path` would leak to the next checkout of the pooled connection).
///
/// Repositories take `&TenantTx` and use these; there is no other way to run SQL in a
/// tenant schema from request code:
///
/// ```compile_fail
/// // A repository cannot reach the raw transaction, so it cannot `batch_execute` (simple
/// // protocol, several statements) nor hand the transaction to code that would.
/// async fn repo(tx: &crm_tenant::TenantTx) {
///     tx.batch_execute("SET search_path = tenant_x").await.unwrap();
/// }
/// ```
///
/// ```compile_fail
/// // Nor is there a `Deref` to `tokio_postgres::Transaction` to borrow it from.
/// fn raw(tx: &crm_tenant::TenantTx) -> &deadpool_postgres::Object {
///     &**tx
/// }
/// ```
pub struct Scoped {
    /// `None` once the transaction ended (the connection is back in the pool).
    client: Option<Object>,
    /// Whether its commit reports the commit's WAL position to the request (see [`crate::read`]).
    tracked: bool,
    /// The schema the search path is set to (a tenant schema or `platform`).
    scope: String,
    /// Run with the scope's name after a successful `COMMIT` (the outbox's wake-up of the
    /// relay: it must not be sent from inside the transaction, see [`Scoped::signal_after_commit`]).
    after_commit: std::sync::OnceLock<fn(&str)>,
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

/// Refuses SQL that reads or writes the search path: only [`TenantDb`] sets it.
fn check_sql(sql: &str) -> Result<(), DbError> {
    const NEEDLE: &[u8] = b"search_path";
    let touches = sql.as_bytes().windows(NEEDLE.len()).any(|w| w.eq_ignore_ascii_case(NEEDLE));
    if touches { Err(DbError::Refused("statements may not touch search_path; the scope is set by crm_tenant")) } else { Ok(()) }
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

/// The first column of each row of a simple-protocol reply.
fn first_columns(messages: &[SimpleQueryMessage]) -> Vec<Option<&str>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0)),
            _ => None,
        })
        .collect()
}

impl Scoped {
    /// The pool's cleaning (`crm_database::CLEAN_SQL`: a checkout runs no query), `BEGIN` and
    /// the transaction-local search path, in one round trip. `schema` is a validated schema
    /// name (`SchemaName` or `platform`), so it can be a literal.
    async fn begin(client: Object, schema: &str, begin: &'static str, tracked: bool) -> Result<Self, DbError> {
        debug_assert!(schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        // `public` second: extension functions (pg_trgm) live there; no table is ever created in it.
        let clean = crm_database::CLEAN_SQL;
        crm_database::note_schema(&client, schema);
        client.batch_execute(&format!("{clean}; {begin}; SELECT set_config('search_path', '{schema}, public', true)")).await?;
        Ok(Self { client: Some(client), tracked, scope: schema.to_owned(), after_commit: std::sync::OnceLock::new() })
    }

    /// As [`Scoped::begin`] with `BEGIN READ ONLY`, on a replica's connection, returning how
    /// far the replica has replayed (`None` from a server not in recovery), in the same round trip.
    async fn begin_replica(client: Object, schema: &str) -> Result<(Self, Option<Lsn>), DbError> {
        debug_assert!(schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        let clean = crm_database::CLEAN_SQL;
        crm_database::note_schema(&client, schema);
        let reply = client
            .simple_query(&format!(
                "{clean}; {BEGIN_READ_ONLY}; SELECT set_config('search_path', '{schema}, public', true); SELECT pg_last_wal_replay_lsn()::text"
            ))
            .await?;
        let replayed = first_columns(&reply).last().copied().flatten().and_then(|lsn| lsn.parse().ok());
        Ok((Self { client: Some(client), tracked: false, scope: schema.to_owned(), after_commit: std::sync::OnceLock::new() }, replayed))
    }

    /// The schema this transaction is scoped to: a tenant schema name or `platform`.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Asks for `signal(scope)` to be called once this transaction has committed (never on a
    /// rollback or a failed commit). Only the first request of a transaction is kept; returns
    /// whether this was it, so a caller can do once-per-transaction work alongside (the
    /// outbox writes its pending marker then). Used by `crm_events` to wake the outbox relay:
    /// a `NOTIFY` inside the transaction would stay on the Citus worker holding the tenant's
    /// schema and would make the transaction impossible to prepare for two-phase commit.
    #[doc(hidden)]
    pub fn signal_after_commit(&self, signal: fn(&str)) -> bool {
        self.after_commit.set(signal).is_ok()
    }

    /// `COMMIT`, then the after-commit signal (if one was asked for).
    async fn commit(mut self) -> Result<(), DbError> {
        let signal = self.after_commit.take();
        let scope = std::mem::take(&mut self.scope);
        if self.tracked {
            self.commit_tracked().await?;
        } else {
            self.end("COMMIT").await?;
        }
        if let Some(signal) = signal {
            signal(&scope);
        }
        Ok(())
    }

    /// `COMMIT` and, when the transaction wrote (it has a transaction id), the WAL position
    /// at or past its commit record for the request (`pg_current_wal_insert_lsn()` after the
    /// commit), in one round trip. A transaction already failed (its first statement is
    /// refused) is ended by a plain `COMMIT`, which rolls it back, as an untracked one is.
    async fn commit_tracked(mut self) -> Result<(), DbError> {
        let client = self.client.take().expect("a transaction ends once");
        let sql = "SELECT pg_current_xact_id_if_assigned() IS NOT NULL; COMMIT; SELECT pg_current_wal_insert_lsn()::text";
        match client.simple_query(sql).await {
            Ok(reply) => {
                if let [Some("t"), Some(lsn)] = first_columns(&reply)[..]
                    && let Ok(lsn) = lsn.parse::<Lsn>()
                {
                    read::record_commit(lsn);
                }
                Ok(())
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION) => {
                client.batch_execute("COMMIT").await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn client(&self) -> &Object {
        self.client.as_ref().expect("a scoped transaction is used only until it ends")
    }

    /// `COMMIT` or `ROLLBACK`, then the connection goes back to the pool.
    async fn end(mut self, sql: &str) -> Result<(), DbError> {
        let client = self.client.take().expect("a transaction ends once");
        client.batch_execute(sql).await?;
        Ok(())
    }

    /// Prepares `sql` once per pooled connection (deadpool's statement cache).
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, DbError> {
        check_sql(sql)?;
        Ok(self.client().prepare_cached(sql).await?)
    }

    /// As [`Scoped::prepare_cached`], with explicit parameter types.
    pub async fn prepare_typed_cached(&self, sql: &str, types: &[Type]) -> Result<Statement, DbError> {
        check_sql(sql)?;
        Ok(self.client().prepare_typed_cached(sql, types).await?)
    }

    pub async fn query<T: Sql + ?Sized>(&self, sql: &T, params: &Params<'_>) -> Result<Vec<Row>, DbError> {
        sql.check()?;
        Ok(self.client().query(sql, params).await?)
    }

    /// Exactly one row, else an error (use [`Scoped::query_opt`] for "maybe one").
    pub async fn query_one<T: Sql + ?Sized>(&self, sql: &T, params: &Params<'_>) -> Result<Row, DbError> {
        sql.check()?;
        Ok(self.client().query_one(sql, params).await?)
    }

    pub async fn query_opt<T: Sql + ?Sized>(&self, sql: &T, params: &Params<'_>) -> Result<Option<Row>, DbError> {
        sql.check()?;
        Ok(self.client().query_opt(sql, params).await?)
    }

    /// The number of rows changed.
    pub async fn execute<T: Sql + ?Sized>(&self, sql: &T, params: &Params<'_>) -> Result<u64, DbError> {
        sql.check()?;
        Ok(self.client().execute(sql, params).await?)
    }
}

/// A transaction dropped without commit (an error, a cancelled request) rolls back at once,
/// off the request path, and its connection then returns to the pool: its row locks do not
/// wait for the next checkout. (Without a runtime, the pool's recycling `ROLLBACK` does it.)
impl Drop for Scoped {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = client.batch_execute("ROLLBACK").await {
                    tracing::debug!(error = %e, "rollback of a dropped transaction failed; the pool recycles the connection");
                }
            });
        }
    }
}

/// A transaction scoped to one tenant's schema. Dropped without [`TenantTx::commit`], it
/// rolls back. Queries through [`Scoped`] (it derefs to it).
pub struct TenantTx {
    inner: Scoped,
    tenant: TenantId,
    schema: SchemaName,
}

impl TenantTx {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }

    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// Commits; the connection goes back to the pool.
    pub async fn commit(self) -> Result<(), DbError> {
        self.inner.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        self.inner.end("ROLLBACK").await
    }
}

impl Deref for TenantTx {
    type Target = Scoped;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

/// A transaction scoped to the `platform` schema. Queries through [`Scoped`].
pub struct PlatformTx {
    inner: Scoped,
}

impl PlatformTx {
    /// Creates `tenant`'s schema if needed and applies every tenant migration set, inside
    /// this transaction: the tenant's registry row, its schema and its tables commit or
    /// vanish together. The transaction stays scoped to `platform` afterwards.
    pub async fn provision_schema(&self, tenant: &TenantId) -> Result<(), crm_database::migrate::MigrateError> {
        crm_database::migrate::provision_schema(self.inner.client(), tenant.schema().as_str()).await?;
        self.rescope().await
    }

    /// Drops `tenant`'s schema with everything in it (and its migration registry rows),
    /// inside this transaction.
    pub async fn drop_schema(&self, tenant: &TenantId) -> Result<(), crm_database::migrate::MigrateError> {
        crm_database::migrate::drop_schema(self.inner.client(), tenant.schema().as_str()).await?;
        self.rescope().await
    }

    /// Back to the `platform` scope after DDL that moved the search path.
    async fn rescope(&self) -> Result<(), crm_database::migrate::MigrateError> {
        let stmt = self.inner.client().prepare_cached("SELECT set_config('search_path', $1 || ', public', true)").await?;
        self.inner.client().execute(&stmt, &[&PLATFORM_SCHEMA]).await?;
        Ok(())
    }

    /// Commits; the connection goes back to the pool.
    pub async fn commit(self) -> Result<(), DbError> {
        self.inner.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        self.inner.end("ROLLBACK").await
    }
}

impl Deref for PlatformTx {
    type Target = Scoped;
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
