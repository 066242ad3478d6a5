//! Spare tenant schemas: provisioned ahead of signups, so a signup takes one instead of
//! creating ~130 catalog relations while the user waits (see `V3__spare_schemas.sql`).

use crm_tenant::{TenantDb, TenantId};
use crm_web::ApiError;

use crate::repo;

/// Provisions one spare schema (the spare row and the schema with every tenant migration
/// set, in one transaction) and returns the tenant id it is reserved for.
pub async fn create_spare(db: &TenantDb) -> Result<TenantId, ApiError> {
    let id = TenantId::new();
    let tx = db.platform().await?;
    repo::insert_spare(&tx, &id).await?;
    tx.provision_schema(&id).await?;
    tx.commit().await?;
    Ok(id)
}

/// Provisions spares until `target` are ready. Several instances may refill at once; the
/// pool may then briefly hold a few extra.
pub async fn refill(db: &TenantDb, target: i64) -> Result<(), ApiError> {
    let spares = {
        let tx = db.platform().await?;
        let n = repo::count_spares(&tx).await?;
        tx.commit().await?;
        n
    };
    for _ in spares..target {
        create_spare(db).await?;
    }
    Ok(())
}
