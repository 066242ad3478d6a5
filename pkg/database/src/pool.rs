use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::DbConfig;

/// What makes a pooled connection clean for its next user: `ROLLBACK` (a half-done
/// transaction of a dropped request; only a suppressed warning when idle) and `RESET ALL`
/// (a session-level setting left behind). Not run at checkout: scoped transactions send it
/// ahead of their `BEGIN`, in the same round trip (`crm_tenant::TenantDb`), so a checkout
/// costs no query of its own (issue 14 item 2).
pub const CLEAN_SQL: &str = "ROLLBACK; RESET ALL";

/// How long an unanswered connection may stay in the pool: TCP keepalive probes after this
/// much silence, and unacknowledged data fails the socket after [`TCP_USER_TIMEOUT`], so a
/// server that vanished without closing (host down, network cut) leaves connections that
/// deadpool sees as closed (`Client::is_closed`) and replaces, instead of a query that hangs.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(30);
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
const TCP_USER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum PoolBuildError {
    #[error("invalid DATABASE_URL: {0}")]
    Url(#[from] tokio_postgres::Error),
    #[error("cannot build the connection pool: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
}

/// Builds the pool. Connections are opened lazily, so this succeeds while Postgres is
/// down; `/ready` and the first query tell.
pub fn create_pool(config: &DbConfig) -> Result<Pool, PoolBuildError> {
    let mut pg: tokio_postgres::Config = config.url.parse()?;
    pg.connect_timeout(config.connect_timeout);
    pg.application_name(&config.application_name);
    // client_min_messages=error: the recycling ROLLBACK on an idle connection, and
    // migrations' `IF NOT EXISTS`, would otherwise send a notice per checkout into the logs.
    pg.options(format!("-c statement_timeout={} -c client_min_messages=error", config.query_timeout.as_millis()));
    pg.keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES)
        .tcp_user_timeout(TCP_USER_TIMEOUT);

    // Fast: a checkout only asks the client whether its connection has closed (a server
    // restart or a dead socket closes it), no round trip; the cleaning query goes with the
    // next BEGIN instead (see CLEAN_SQL). The previous `Custom("ROLLBACK; RESET ALL")` cost a
    // round trip on every checkout, one of four per scoped read.
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let max_lifetime = config.max_lifetime;
    let max_idle = config.max_idle;
    let max_schemas = config.max_schemas_per_connection;
    if max_schemas > 0 {
        SCHEMAS.tracking.store(true, Ordering::Relaxed);
    }
    let pool = Pool::builder(manager)
        .max_size(config.max_connections)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.acquire_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .pre_recycle(Hook::sync_fn(move |_, metrics| {
            if metrics.age() > max_lifetime {
                SCHEMAS.forget(metrics.created);
                return Err(HookError::message("connection reached its maximum lifetime"));
            }
            if metrics.last_used() > max_idle {
                SCHEMAS.forget(metrics.created);
                return Err(HookError::message("connection idle for too long"));
            }
            if max_schemas > 0 && SCHEMAS.count(metrics.created) >= max_schemas {
                SCHEMAS.forget(metrics.created);
                return Err(HookError::message("connection met its maximum of distinct schemas"));
            }
            Ok(())
        }))
        .build()?;
    Ok(pool)
}

/// Records that `client` (a pooled connection) runs a transaction in `schema`, for
/// [`DbConfig::max_schemas_per_connection`](crate::DbConfig::max_schemas_per_connection):
/// called by `crm_tenant` at every scoped `BEGIN`. Costs a hash and a short lock; nothing
/// when no pool of the process has the limit on.
pub fn note_schema(client: &Object, schema: &str) {
    SCHEMAS.note(Object::metrics(client).created, schema);
}

/// How many distinct schemas `client` has run transactions in (as recorded by [`note_schema`]
/// since the connection was opened; 0 when no pool has the limit on).
pub fn schemas_touched(client: &Object) -> usize {
    SCHEMAS.count(Object::metrics(client).created)
}

/// The distinct schemas of every live pooled connection of the process. A connection is
/// known by its creation instant (deadpool's `Metrics::created`, the only stable identity a
/// pooled object exposes; two connections opened in the same nanosecond would share a
/// count, which only makes one of them recycle early). Schema names are kept as hashes.
struct SchemaTracker {
    tracking: AtomicBool,
    hasher: RandomState,
    seen: Mutex<HashMap<Instant, HashSet<u64>>>,
}

/// Entries of connections the pool dropped without recycling them (closed by the server,
/// pool shut down) are swept when the map grows past this many connections: those older
/// than [`STALE_AFTER`], more than any connection lives (the pool's maximum lifetime).
const SWEEP_ABOVE: usize = 4096;
const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

static SCHEMAS: LazyLock<SchemaTracker> =
    LazyLock::new(|| SchemaTracker { tracking: AtomicBool::new(false), hasher: RandomState::new(), seen: Mutex::new(HashMap::new()) });

impl SchemaTracker {
    fn note(&self, created: Instant, schema: &str) {
        if !self.tracking.load(Ordering::Relaxed) {
            return;
        }
        let hash = self.hasher.hash_one(schema);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > SWEEP_ABOVE {
            seen.retain(|created, _| created.elapsed() < STALE_AFTER);
        }
        seen.entry(created).or_default().insert(hash);
    }

    fn count(&self, created: Instant) -> usize {
        if !self.tracking.load(Ordering::Relaxed) {
            return 0;
        }
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).get(&created).map_or(0, HashSet::len)
    }

    fn forget(&self, created: Instant) {
        if self.tracking.load(Ordering::Relaxed) {
            self.seen.lock().unwrap_or_else(|e| e.into_inner()).remove(&created);
        }
    }
}
