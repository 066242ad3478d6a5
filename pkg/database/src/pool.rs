use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::DbConfig;

/// Runs on every checkout of a pooled connection. A dropped request may leave a
/// connection inside a half-done transaction, or a session-level setting behind;
/// `ROLLBACK` (a warning only when idle) and `RESET ALL` hand the next user a clean one.
const RECYCLE_SQL: &str = "ROLLBACK; RESET ALL";

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

    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig { recycling_method: RecyclingMethod::Custom(RECYCLE_SQL.to_owned()) },
    );
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
