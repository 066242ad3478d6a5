//! Database plumbing shared by every service: configuration from the environment, the
//! deadpool-postgres pool (and the optional read pool on a replica, `DATABASE_READ_URL`), the
//! health checks and the migration runner.
//!
//! Request code never sees a [`Pool`] from here: services wrap it in
//! `crm_tenant::TenantDb`, which only hands out tenant-scoped transactions.

mod config;
mod error;
mod health;
pub mod ident;
mod lsn;
pub mod migrate;
mod pool;
pub mod schema;

pub use config::{ConfigError, DEFAULT_MAX_SCHEMAS_PER_CONNECTION, DbConfig, READ_CONNECT_TIMEOUT};
pub use error::{DbProblem, DbProblemKind, DbTarget, create_database_if_missing, error_chain};
pub use deadpool_postgres::{Pool, PoolError};
pub use health::{DbHealth, PoolStats, ReplicaHealth, health_check, replica_health};
pub use lsn::{InvalidLsn, Lsn};
pub use pool::{CLEAN_SQL, PoolBuildError, create_pool, note_schema, schemas_touched};
