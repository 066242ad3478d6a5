//! Spare tenant schemas: provisioned ahead of signups, so a signup takes one instead of
//! creating ~130 catalog relations while the user waits (see `V3__spare_schemas.sql`).

use std::sync::Arc;
use std::time::Duration;

use crm_tenant::{DbError, TenantDb, TenantId};
use tokio::sync::Notify;

use crate::repo;

/// Provisions one spare schema (schema + every tenant migration set + the spare row, one
/// transaction) and returns the tenant id it is reserved for.
pub async fn create_spare(db: &TenantDb) -> Result<TenantId, SpareError> {
    let id = TenantId::new();
    let mut conn = db.connect().await?;
    let tx = conn.platform().await?;
    repo::insert_spare(&tx, &id).await.map_err(DbError::from)?;
    crm_database::migrate::provision_schema(&tx, id.schema().as_str()).await?;
    tx.commit().await?;
    Ok(id)
}

#[derive(Debug, thiserror::Error)]
pub enum SpareError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migrate(#[from] crm_database::migrate::MigrateError),
}

/// Keeps `target` spares ready: refills when woken (a signup took one) and every 30 s.
/// Several instances may refill at once; the pool may then briefly hold a few extra.
pub fn spawn_refill(db: TenantDb, target: i64, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = refill(&db, target).await {
                tracing::warn!(error = %e, "could not refill spare tenant schemas");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    })
}

async fn refill(db: &TenantDb, target: i64) -> Result<(), SpareError> {
    let spares = {
        let mut conn = db.connect().await?;
        let tx = conn.platform().await?;
        let n = repo::count_spares(&tx).await.map_err(DbError::from)?;
        tx.commit().await?;
        n
    };
    for _ in spares..target {
        create_spare(db).await?;
    }
    Ok(())
}
