//! Tenant schema DDL (create + migrate, drop): the ONE place in tenant-service that holds a
//! raw transaction. System-level, like the outbox relay: request code reaches it only
//! through [`Schemas::change_and_commit`].
//!
//! Why a raw transaction: `crm_database::migrate::{provision_schema, drop_schema}` run
//! refinery's migration sets (multi-statement batches) and move the transaction's search
//! path into the new schema. The scoped transactions of `crm_tenant` refuse both by design
//! (no batch statements, nothing that touches `search_path`) and hand out no raw
//! `Transaction`; nor does `crm_runtime::Platform` hand out its pool. So the DDL runs on a
//! small pool of its own, in a second transaction next to the caller's [`PlatformTx`].
//!
//! Atomicity: the tenant row (or spare row), its invitation and its events are written in
//! the caller's platform transaction; the schema change in this one. Both do all their work
//! before either commits, so every refusal (subdomain taken, tenant gone) and every error
//! rolls back both. Then the schema change commits, then the platform transaction. Only a
//! failure between the two commits splits them, and leaves a state that is harmless or
//! repaired by retrying the request:
//! * provision: a migrated, empty schema that no tenant row points to (unreachable);
//! * drop: the schema is gone while the tenant row stays; `DELETE /tenants/{id}` again
//!   finishes the deletion (`DROP SCHEMA IF EXISTS`).
//!
//! (Before the scoped transactions, both were one transaction. A `crm_tenant` operation
//! that runs the DDL inside a `PlatformTx` would bring that back and retire this module.)

use crm_database::migrate::{self, MigrateError};
use crm_database::{DbConfig, Pool, PoolBuildError};
use crm_tenant::{DbError, PlatformTx, TenantId};
use crm_web::ApiError;

/// Connections for schema DDL: signups and deletions are rare, a few suffice.
const POOL_SIZE: usize = 4;

/// Source of the transactions that create, migrate and drop tenant schemas.
#[derive(Clone)]
pub struct Schemas {
    pool: Pool,
}

/// What [`Schemas::change_and_commit`] does to the tenant's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChange {
    /// Create the schema if needed and apply every tenant migration set (for an existing,
    /// current schema such as a spare: a few cheap reads).
    Provision,
    /// Drop the schema with everything in it.
    Drop,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

impl From<SchemaError> for ApiError {
    fn from(err: SchemaError) -> Self {
        match err {
            SchemaError::Db(e) => e.into(),
            migrate @ SchemaError::Migrate(_) => ApiError::internal(migrate),
        }
    }
}

impl Schemas {
    /// A pool of its own on the platform's database (see the module docs).
    pub fn connect(db: &DbConfig) -> Result<Self, PoolBuildError> {
        let config = DbConfig {
            max_connections: POOL_SIZE,
            ..db.clone().with_application_name(&format!("{}:schemas", db.application_name))
        };
        Ok(Self::new(crm_database::create_pool(&config)?))
    }

    /// Uses `pool` for schema DDL only.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Applies `change` to `tenant`'s schema in a transaction of its own, commits it, then
    /// commits `tx` (the caller's platform transaction, with all its writes done). Errors
    /// before the first commit roll back both.
    pub async fn change_and_commit(&self, tenant: &TenantId, change: SchemaChange, tx: PlatformTx<'_>) -> Result<(), SchemaError> {
        let mut client = self.pool.get().await.map_err(DbError::from)?;
        let ddl = client.transaction().await.map_err(DbError::from)?;
        let schema = tenant.schema();
        match change {
            SchemaChange::Provision => migrate::provision_schema(&ddl, schema.as_str()).await?,
            SchemaChange::Drop => migrate::drop_schema(&ddl, schema.as_str()).await?,
        }
        ddl.commit().await.map_err(DbError::from)?;
        tx.commit().await?;
        Ok(())
    }
}
