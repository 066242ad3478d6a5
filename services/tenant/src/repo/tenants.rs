//! `platform.tenants`: the tenant registry.

use crm_client_tenant::TenantDetails;
use crm_tenant::{PlatformTx, TenantId};
use tokio_postgres::Row;

use super::Result;

/// The schema name stays in the table (the registry reads it); no response carries it.
const TENANT_COLUMNS: &str = "id, name, subdomain, status, created_at, updated_at";

fn tenant_from(row: &Row) -> TenantDetails {
    TenantDetails {
        id: row.get(0),
        name: row.get(1),
        subdomain: row.get(2),
        status: row.get(3),
        created_at: row.get(4),
        updated_at: row.get(5),
    }
}

/// A unique violation (`tenants_subdomain_key`) when the subdomain is taken.
pub async fn insert_tenant(tx: &PlatformTx, id: &TenantId, name: &str, subdomain: &str) -> Result<TenantDetails> {
    let sql = format!(
        "INSERT INTO platform.tenants (id, name, subdomain, schema_name) VALUES ($1, $2, $3, $4) RETURNING {TENANT_COLUMNS}"
    );
    let row = tx.query_one(sql.as_str(), &[&id.to_string(), &name, &subdomain, &id.schema().as_str()]).await?;
    Ok(tenant_from(&row))
}

pub async fn tenant_by_id(tx: &PlatformTx, id: &TenantId) -> Result<Option<TenantDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {TENANT_COLUMNS} FROM platform.tenants WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id.to_string()]).await?.as_ref().map(tenant_from))
}

pub async fn tenant_by_subdomain(tx: &PlatformTx, subdomain: &str) -> Result<Option<TenantDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {TENANT_COLUMNS} FROM platform.tenants WHERE subdomain = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&subdomain]).await?.as_ref().map(tenant_from))
}

/// Locks the row for the rest of the transaction (PATCH and DELETE read, check, write).
pub async fn tenant_for_update(tx: &PlatformTx, id: &TenantId) -> Result<Option<TenantDetails>> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM platform.tenants WHERE id = $1 FOR UPDATE");
    Ok(tx.query_opt(sql.as_str(), &[&id.to_string()]).await?.as_ref().map(tenant_from))
}

pub async fn update_tenant(
    tx: &PlatformTx,
    id: &TenantId,
    name: Option<&str>,
    status: Option<&str>,
) -> Result<TenantDetails> {
    let sql = format!(
        "UPDATE platform.tenants SET name = coalesce($2, name), status = coalesce($3, status), updated_at = now()
         WHERE id = $1 RETURNING {TENANT_COLUMNS}"
    );
    Ok(tenant_from(&tx.query_one(sql.as_str(), &[&id.to_string(), &name, &status]).await?))
}

pub async fn delete_tenant(tx: &PlatformTx, id: &TenantId) -> Result<()> {
    // Invitations go with the row (ON DELETE CASCADE).
    tx.execute("DELETE FROM platform.tenants WHERE id = $1", &[&id.to_string()]).await?;
    Ok(())
}
