//! Migration runner: refinery migration sets applied into the `platform` schema and into
//! every tenant schema.
//!
//! * One transaction per tenant schema, holding `pg_advisory_xact_lock` on that schema, so
//!   two instances starting together never collide and a crash leaves each tenant either
//!   fully migrated or untouched (a re-run resumes with the ones still behind).
//! * The fleet run holds a global advisory lock for its duration; a second instance waits,
//!   then finds nothing to do.
//! * Each migration file is split into its statements with PostgreSQL's own parser
//!   (`pg_query`) and sent one statement per command: Citus forwards DDL text to the worker
//!   holding a tenant schema, and a worker refuses several commands in one forwarded query.
//! * Schemas are created with `citus.enable_schema_based_sharding` off (on plain PostgreSQL
//!   an inert placeholder setting), so `platform` stays on a Citus coordinator whatever the
//!   database default. A tenant schema is migrated while still local (the oldest migrations
//!   created triggers that later ones drop, which Citus would refuse on distributed tables)
//!   and then, when the database is a Citus coordinator, distributed whole to one worker by
//!   `citus_schema_distribute` in the same provisioning transaction ([`provision_schema`];
//!   spares included). `CITUS=false` keeps new tenant schemas local.
//! * A failing statement is reported with PostgreSQL's own words: SQLSTATE, message,
//!   detail, hint and the line of the statement it points at ([`StatementError`]).
//! * The no-op path reads `platform.schema_versions` (written in the same transaction as
//!   each migration) in one query, so checking 10,000 up-to-date schemas costs milliseconds
//!   instead of one round trip per schema and set.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use futures::{StreamExt, TryStreamExt};
use refinery::{Migration, Runner};
use refinery::{AsyncMigrate, error::Error as RefineryError};
use refinery_core::traits::r#async::{AsyncQuery, AsyncTransaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::Client;

use crate::ident::{PLATFORM_SCHEMA, is_tenant_schema, quote_ident};
use crate::schema::{GLOBAL, TENANT_SETS};

/// Advisory lock keys (first key of the two-key form: our namespace).
const LOCK_NAMESPACE: i32 = 0x43524d; // "CRM"
const LOCK_FLEET: i32 = 1;
const LOCK_PLATFORM: i32 = 2;

/// One embedded set of migrations (one service's tables).
#[derive(Clone, Copy)]
pub struct MigrationSet {
    pub name: &'static str,
    runner: fn() -> Runner,
}

impl MigrationSet {
    pub const fn new(name: &'static str, runner: fn() -> Runner) -> Self {
        Self { name, runner }
    }

    /// The highest version embedded in this build.
    pub fn latest_version(&self) -> i32 {
        (self.runner)().get_migrations().iter().map(|m| m.version()).max().unwrap_or(0)
    }

    fn history_table(&self, schema: &str) -> String {
        format!("{}.{}", quote_ident(schema), quote_ident(&format!("{}_schema_history", self.name)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("database unavailable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("{}", describe_pg_error(.0))]
    Db(#[from] tokio_postgres::Error),
    /// `source` carries refinery's "error applying migration V<n>__<name>" and, inside,
    /// the [`StatementError`] with PostgreSQL's message.
    #[error("migration set {set} in {schema}: {source}")]
    Refinery { set: &'static str, schema: String, source: Box<RefineryError> },
    #[error("not a tenant schema name: {0:?}")]
    BadSchema(String),
}

/// Applies the global set into `platform`.
pub async fn migrate_platform(pool: &Pool) -> Result<(), MigrateError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_NAMESPACE, &LOCK_PLATFORM]).await?;
    // On a Citus coordinator with schema-based sharding on by default, a plain CREATE SCHEMA
    // would distribute `platform` (and move its tables to a worker): it must stay local.
    tx.batch_execute("SET LOCAL citus.enable_schema_based_sharding = off").await?;
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(PLATFORM_SCHEMA))).await?;
    set_local_search_path(tx.client(), PLATFORM_SCHEMA).await?;
    run_set(tx.client(), PLATFORM_SCHEMA, &GLOBAL).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates `schema` if needed and brings every tenant set up to date inside the caller's
/// transaction (used by tenant provisioning, so the tenant row, the schema and its tables
/// commit or vanish together). Leaves the transaction's search path on `schema`.
pub async fn provision_schema(tx: &Client, schema: &str) -> Result<(), MigrateError> {
    provision_schema_with(tx, schema, TENANT_SETS).await
}

/// [`provision_schema`] with explicit sets (benchmarks, tests).
pub async fn provision_schema_with(tx: &Client, schema: &str, sets: &[MigrationSet]) -> Result<(), MigrateError> {
    apply_tenant_sets(tx, schema, sets).await?;
    distribute_if_citus(tx, schema).await
}

/// On a Citus coordinator (the `citus` extension is installed in this database) and unless
/// `CITUS=false`, makes `schema` a distributed tenant schema: its tables become single-shard
/// tables placed together on one worker. A schema already distributed is left as it is.
/// Nothing happens on plain PostgreSQL.
pub async fn distribute_if_citus(tx: &Client, schema: &str) -> Result<(), MigrateError> {
    check_tenant_schema(schema)?;
    if !distribute_tenant_schemas() {
        return Ok(());
    }
    let distribute = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')
                    AND to_regclass('pg_catalog.pg_dist_schema') IS NOT NULL",
            &[],
        )
        .await?
        .get::<_, bool>(0);
    if distribute {
        // Prepared only here: pg_dist_schema and the function exist only where Citus is.
        let already: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = $1::text::regnamespace)", &[&schema])
            .await?
            .get(0);
        if !already {
            tx.execute("SELECT citus_schema_distribute($1::text::regnamespace)", &[&schema]).await?;
        }
    }
    Ok(())
}

/// Drops a tenant schema with everything in it and forgets its registry rows.
pub async fn drop_schema(tx: &Client, schema: &str) -> Result<(), MigrateError> {
    check_tenant_schema(schema)?;
    lock_schema(tx, schema).await?;
    tx.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(schema))).await?;
    tx.execute("DELETE FROM platform.schema_versions WHERE schema_name = $1", &[&schema]).await?;
    tx.execute("DELETE FROM platform.outbox_pending WHERE schema_name = $1", &[&schema]).await?;
    Ok(())
}

async fn apply_tenant_sets(tx: &Client, schema: &str, sets: &[MigrationSet]) -> Result<(), MigrateError> {
    check_tenant_schema(schema)?;
    // One round trip for lock, sharding mode, schema and search path (simple protocol, each
    // a command of its own on the coordinator; none is forwarded to a worker as text). The
    // name is validated above, so it can be spliced in as a literal and a quoted identifier.
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, hashtext('{schema}'));
         SET LOCAL citus.enable_schema_based_sharding = off;
         CREATE SCHEMA IF NOT EXISTS {quoted};
         SELECT set_config('search_path', '{schema}, public', true);",
        quoted = quote_ident(schema),
    ))
    .await?;
    for set in sets {
        run_set(tx, schema, set).await?;
    }
    Ok(())
}

async fn lock_schema(tx: &Client, schema: &str) -> Result<(), tokio_postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&LOCK_NAMESPACE, &schema]).await?;
    Ok(())
}

/// The schema, then `public` for extension functions and operators (pg_trgm).
async fn set_local_search_path(tx: &Client, schema: &str) -> Result<(), tokio_postgres::Error> {
    tx.execute("SELECT set_config('search_path', $1 || ', public', true)", &[&schema]).await?;
    Ok(())
}

/// Whether new tenant schemas are distributed when the database is a Citus coordinator:
/// yes unless `CITUS` is `false`/`0`/`off` (read once). Without Citus the setting it drives
/// is an unused placeholder, so plain PostgreSQL behaves the same either way.
pub fn distribute_tenant_schemas() -> bool {
    static DISTRIBUTE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DISTRIBUTE.get_or_init(|| {
        !matches!(std::env::var("CITUS").map(|v| v.trim().to_ascii_lowercase()).as_deref(), Ok("false" | "0" | "off" | "no"))
    })
}

fn check_tenant_schema(schema: &str) -> Result<(), MigrateError> {
    if is_tenant_schema(schema) { Ok(()) } else { Err(MigrateError::BadSchema(schema.to_owned())) }
}

/// Runs one refinery set inside `tx` and records the resulting version in the registry.
async fn run_set(tx: &Client, schema: &str, set: &MigrationSet) -> Result<(), MigrateError> {
    let mut runner = (set.runner)();
    runner.set_migration_table_name(set.history_table(schema));
    // The whole tenant is one transaction already; refinery must not open its own.
    // Versions applied by a newer build are tolerated (rolling deploys), edited ones are not.
    let runner = runner.set_grouped(false).set_abort_divergent(true).set_abort_missing(false);
    runner
        .run_async(&mut InTransaction(tx))
        .await
        .map_err(|e| MigrateError::Refinery { set: set.name, schema: schema.to_owned(), source: Box::new(e) })?;
    tx.execute(
        "INSERT INTO platform.schema_versions (schema_name, migration_set, version) VALUES ($1, $2, $3)
         ON CONFLICT (schema_name, migration_set)
         DO UPDATE SET version = EXCLUDED.version, applied_at = EXCLUDED.applied_at
         WHERE schema_versions.version < EXCLUDED.version",
        &[&schema, &set.name, &set.latest_version()],
    )
    .await?;
    Ok(())
}

/// Splits a migration file (or any SQL text) into its statements with PostgreSQL's own
/// parser, so comments, quoted semicolons and dollar-quoted bodies are handled as the server
/// would; each statement comes back without its terminating semicolon, blank ones dropped.
pub fn split_statements(sql: &str) -> Result<Vec<&str>, StatementError> {
    let statements = pg_query::split_with_parser(sql).map_err(|e| StatementError::parse(sql, &e))?;
    Ok(statements.into_iter().map(str::trim).filter(|s| !s.is_empty()).collect())
}

/// A migration statement that failed, in PostgreSQL's words: SQLSTATE, message, detail, hint
/// and where in the statement the server pointed (line and column, with that line).
#[derive(Debug, thiserror::Error)]
#[error("{description}")]
pub struct StatementError {
    description: String,
    /// The SQLSTATE, when the server answered (not for a statement that did not parse).
    pub code: Option<String>,
}

impl StatementError {
    fn parse(sql: &str, error: &pg_query::Error) -> Self {
        Self { description: format!("SQL does not parse: {error}; in: {}", excerpt(sql)), code: None }
    }

    fn from_pg(statement: &str, error: &tokio_postgres::Error) -> Self {
        let mut description = describe_pg_error(error);
        let position = match error.as_db_error().and_then(|db| db.position()) {
            Some(tokio_postgres::error::ErrorPosition::Original(at)) => Some(*at as usize),
            _ => None,
        };
        match position {
            Some(at) => description.push_str(&format_position(statement, at)),
            None => {
                description.push_str("; in statement: ");
                description.push_str(&excerpt(statement));
            }
        }
        Self { description, code: error.code().map(|c| c.code().to_owned()) }
    }
}

/// `SQLSTATE 42P07: relation "x" already exists; detail: ...; hint: ...` for a server error,
/// the error chain otherwise (a closed connection, an I/O error).
pub fn describe_pg_error(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut out = format!("SQLSTATE {}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                out.push_str("; detail: ");
                out.push_str(detail);
            }
            if let Some(hint) = db.hint() {
                out.push_str("; hint: ");
                out.push_str(hint);
            }
            if let Some(context) = db.where_() {
                out.push_str("; where: ");
                out.push_str(context);
            }
            out
        }
        None => crate::error_chain(error),
    }
}

/// `; at line L, column C of the statement: <that line>` for a 1-based character position.
fn format_position(statement: &str, at: usize) -> String {
    let before: String = statement.chars().take(at.saturating_sub(1)).collect();
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    let text = statement.lines().nth(line - 1).unwrap_or_default().trim_end();
    format!("; at line {line}, column {column} of the statement: {}", text.trim())
}

/// A statement on one line (whitespace collapsed, at most 200 characters), to name it in an error.
fn excerpt(sql: &str) -> String {
    let line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push_str(" ...");
    }
    out
}

/// Lets refinery run its statements inside a transaction we own (open on this connection).
struct InTransaction<'a>(&'a Client);

impl AsyncTransaction for InTransaction<'_> {
    type Error = StatementError;

    /// Every query (a migration file, then refinery's history insert) is split and sent one
    /// statement per command, in order, in the caller's transaction.
    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(&mut self, queries: T) -> Result<usize, Self::Error> {
        let mut count = 0;
        for query in queries {
            for statement in split_statements(query)? {
                self.0.batch_execute(statement).await.map_err(|e| StatementError::from_pg(statement, &e))?;
            }
            count += 1;
        }
        Ok(count)
    }
}

impl AsyncQuery<Vec<Migration>> for InTransaction<'_> {
    async fn query(&mut self, query: &str) -> Result<Vec<Migration>, Self::Error> {
        let rows = self.0.query(query, &[]).await.map_err(|e| StatementError::from_pg(query, &e))?;
        let mut applied = Vec::with_capacity(rows.len());
        for row in rows {
            let applied_on: String = row.get(2);
            let checksum: String = row.get(3);
            // Rows written by refinery itself: RFC 3339 and a decimal u64.
            let applied_on = OffsetDateTime::parse(&applied_on, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            applied.push(Migration::applied(row.get(0), row.get(1), applied_on, checksum.parse().unwrap_or_default()));
        }
        Ok(applied)
    }
}

impl AsyncMigrate for InTransaction<'_> {}

/// How the tenant fleet stands against the sets embedded in this build.
#[derive(Debug, Clone, Default)]
pub struct FleetStatus {
    pub schemas: usize,
    /// Tenant schemas with at least one set behind (or never recorded).
    pub behind: Vec<String>,
}

/// One query for the schemas, one for the registry: the no-op check.
pub async fn fleet_status(pool: &Pool, sets: &[MigrationSet]) -> Result<FleetStatus, MigrateError> {
    let (schemas, pending) = pending_sets(pool, sets).await?;
    Ok(FleetStatus { schemas, behind: pending.into_iter().map(|(schema, _)| schema).collect() })
}

/// Every tenant schema with the sets it is behind on.
async fn pending_sets(pool: &Pool, sets: &[MigrationSet]) -> Result<(usize, Vec<(String, Vec<MigrationSet>)>), MigrateError> {
    let client = pool.get().await?;
    let schemas: Vec<String> = client
        .query("SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^tenant_[0-9a-z]{26}$' ORDER BY 1", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let names: Vec<&str> = sets.iter().map(|s| s.name).collect();
    let mut versions: HashMap<(String, String), i32> = HashMap::with_capacity(schemas.len() * sets.len());
    for row in client
        .query(
            "SELECT schema_name, migration_set, version FROM platform.schema_versions WHERE migration_set = ANY($1)",
            &[&names],
        )
        .await?
    {
        versions.insert((row.get(0), row.get(1)), row.get(2));
    }
    let latest: Vec<(MigrationSet, i32)> = sets.iter().map(|s| (*s, s.latest_version())).collect();
    let count = schemas.len();
    let pending = schemas
        .into_iter()
        .filter_map(|schema| {
            let behind: Vec<MigrationSet> = latest
                .iter()
                .filter(|(set, version)| {
                    versions.get(&(schema.clone(), set.name.to_owned())).is_none_or(|v| v < version)
                })
                .map(|(set, _)| *set)
                .collect();
            (!behind.is_empty()).then_some((schema, behind))
        })
        .collect();
    Ok((count, pending))
}

#[derive(Debug, Default)]
pub struct MigrationSummary {
    pub schemas: usize,
    pub up_to_date: usize,
    pub migrated: usize,
    pub failed: Vec<(String, String)>,
    pub check_time: Duration,
    pub total_time: Duration,
}

#[derive(Clone, Copy)]
pub struct FleetOptions {
    /// Tenant schemas migrated at once (each holds one pooled connection).
    pub concurrency: usize,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self { concurrency: 8 }
    }
}

/// Brings `platform` and every tenant schema up to date. Failures of single tenants are
/// reported in the summary (their transaction rolled back) and do not stop the others.
pub async fn migrate_all(
    pool: &Pool,
    sets: &[MigrationSet],
    options: FleetOptions,
    progress: impl Fn(usize, usize) + Send + Sync,
) -> Result<MigrationSummary, MigrateError> {
    let started = Instant::now();
    migrate_platform(pool).await?;

    // Held for the whole run (transaction-scoped, so a crash or a cancelled future releases it).
    let mut guard_client = pool.get().await?;
    let guard = guard_client.transaction().await?;
    guard.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_NAMESPACE, &LOCK_FLEET]).await?;

    let (schemas, pending) = pending_sets(pool, sets).await?;
    let check_time = started.elapsed();
    let total = pending.len();
    let mut summary = MigrationSummary {
        schemas,
        up_to_date: schemas - total,
        check_time,
        ..Default::default()
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (done, progress) = (&done, &progress);
    let results: Vec<(String, Result<(), MigrateError>)> = futures::stream::iter(pending)
        .map(|(schema, behind)| async move {
            // Only the sets this schema is behind on: the others cost nothing.
            let result = migrate_one(pool, &schema, &behind).await;
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, total);
            (schema, result)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    for (schema, result) in results {
        match result {
            Ok(()) => summary.migrated += 1,
            Err(e) => {
                tracing::error!(schema, error = %e, "tenant migration failed");
                summary.failed.push((schema, e.to_string()));
            }
        }
    }
    guard.commit().await?;
    summary.total_time = started.elapsed();
    Ok(summary)
}

async fn migrate_one(pool: &Pool, schema: &str, sets: &[MigrationSet]) -> Result<(), MigrateError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // A fleet run need not wait for each commit's WAL flush: every tenant's migration is one
    // atomic transaction recorded in the registry by the same commit, so a crash losing the
    // last commits only means the re-run applies them again. (Not for provisioning: a signup
    // that answered 201 must survive a crash.)
    tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
    apply_tenant_sets(tx.client(), schema, sets).await?;
    tx.commit().await?;
    Ok(())
}

/// Lists tenant schemas (for tools and tests).
pub async fn tenant_schemas(pool: &Pool) -> Result<Vec<String>, MigrateError> {
    let client = pool.get().await?;
    let rows = client
        .query_raw("SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^tenant_[0-9a-z]{26}$'", std::iter::empty::<&str>())
        .await?;
    Ok(rows.map_ok(|r| r.get(0)).try_collect().await?)
}
