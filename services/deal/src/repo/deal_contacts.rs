//! The contacts of a deal (`deal_contacts`).

use chrono::{DateTime, Utc};
use crm_tenant::{DbError, TenantTx};
use tokio_postgres::Row;

pub struct DealContactRow {
    pub deal_id: i32,
    pub contact_id: i32,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

fn deal_contact_from(row: &Row) -> DealContactRow {
    DealContactRow { deal_id: row.get(0), contact_id: row.get(1), role: row.get(2), created_at: row.get(3) }
}

/// Adds the contact to the deal; `None` when it is on the deal already.
pub async fn add_deal_contact(tx: &TenantTx, deal_id: i32, contact_id: i32, role: &str, by: i32) -> Result<Option<DealContactRow>, DbError> {
    let row = tx
        .query_opt(
            "INSERT INTO deal_contacts (deal_id, contact_id, role, created_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (deal_id, contact_id) DO NOTHING RETURNING deal_id, contact_id, role, created_at",
            &[&deal_id, &contact_id, &role, &by],
        )
        .await?;
    Ok(row.as_ref().map(deal_contact_from))
}

pub async fn list_deal_contacts(tx: &TenantTx, deal_id: i32) -> Result<Vec<DealContactRow>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT deal_id, contact_id, role, created_at FROM deal_contacts WHERE deal_id = $1 ORDER BY created_at, contact_id",
        )
        .await?;
    Ok(tx.query(&stmt, &[&deal_id]).await?.iter().map(deal_contact_from).collect())
}

pub async fn remove_deal_contact(tx: &TenantTx, deal_id: i32, contact_id: i32) -> Result<bool, DbError> {
    Ok(tx.execute("DELETE FROM deal_contacts WHERE deal_id = $1 AND contact_id = $2", &[&deal_id, &contact_id]).await? == 1)
}
