use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
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
    let pool = Pool::builder(manager)
        .max_size(config.max_connections)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.acquire_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .pre_recycle(Hook::sync_fn(move |_, metrics| {
            if metrics.age() > max_lifetime {
                return Err(HookError::message("connection reached its maximum lifetime"));
            }
            if metrics.last_used() > max_idle {
                return Err(HookError::message("connection idle for too long"));
            }
            Ok(())
        }))
        .build()?;
    Ok(pool)
}
