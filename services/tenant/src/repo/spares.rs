//! `platform.spare_schemas`: tenant schemas provisioned ahead of signups.

use crm_tenant::{PlatformTx, TenantId};

use super::Result;

/// Takes the oldest spare schema for a signup in this transaction (it returns to the pool if
/// the transaction rolls back). `SKIP LOCKED`: concurrent signups take different spares.
pub async fn take_spare(tx: &PlatformTx) -> Result<Option<TenantId>> {
    let row = tx
        .query_opt(
            "DELETE FROM platform.spare_schemas WHERE tenant_id =
               (SELECT tenant_id FROM platform.spare_schemas ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)
             RETURNING tenant_id",
            &[],
        )
        .await?;
    Ok(row.and_then(|r| TenantId::parse(r.get(0)).ok()))
}

pub async fn insert_spare(tx: &PlatformTx, id: &TenantId) -> Result<()> {
    tx.execute("INSERT INTO platform.spare_schemas (tenant_id) VALUES ($1)", &[&id.to_string()]).await?;
    Ok(())
}

pub async fn count_spares(tx: &PlatformTx) -> Result<i64> {
    Ok(tx.query_one("SELECT count(*) FROM platform.spare_schemas", &[]).await?.get(0))
}
