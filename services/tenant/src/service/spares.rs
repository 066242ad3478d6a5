//! Spare tenant schemas: provisioned ahead of signups, so a signup takes one instead of
//! creating ~130 catalog relations while the user waits (see `V3__spare_schemas.sql`).

use crm_tenant::{TenantDb, TenantId};

use crate::repo;
use crate::schemas::{SchemaChange, SchemaError, Schemas};

/// Provisions one spare schema (the spare row, then the schema with every tenant migration
/// set; see [`Schemas::change_and_commit`]) and returns the tenant id it is reserved for.
pub async fn create_spare(db: &TenantDb, schemas: &Schemas) -> Result<TenantId, SchemaError> {
    let id = TenantId::new();
    let mut conn = db.connect().await?;
    let tx = conn.platform().await?;
    repo::insert_spare(&tx, &id).await?;
    schemas.change_and_commit(&id, SchemaChange::Provision, tx).await?;
    Ok(id)
}

/// Provisions spares until `target` are ready. Several instances may refill at once; the
/// pool may then briefly hold a few extra.
pub async fn refill(db: &TenantDb, schemas: &Schemas, target: i64) -> Result<(), SchemaError> {
    let spares = {
        let mut conn = db.connect().await?;
        let tx = conn.platform().await?;
        let n = repo::count_spares(&tx).await?;
        tx.commit().await?;
        n
    };
    for _ in spares..target {
        create_spare(db, schemas).await?;
    }
    Ok(())
}
