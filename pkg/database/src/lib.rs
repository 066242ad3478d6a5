//! Database plumbing shared by every service: configuration from the environment, the
//! deadpool-postgres pool, the health check and the migration runner.
//!
//! Request code never sees a [`Pool`] from here: services wrap it in
//! `crm_tenant::TenantDb`, which only hands out tenant-scoped transactions.

mod config;
mod error;
mod health;
pub mod ident;
pub mod migrate;
mod pool;
pub mod schema;

pub use config::{ConfigError, DbConfig};
pub use error::{DbProblem, DbProblemKind, DbTarget, create_database_if_missing, error_chain};
pub use deadpool_postgres::{Pool, PoolError};
pub use health::{DbHealth, PoolStats, health_check};
pub use pool::{CLEAN_SQL, PoolBuildError, create_pool};
