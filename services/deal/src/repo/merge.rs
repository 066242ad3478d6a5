//! References moved from merged contacts and companies to their survivor (issue 16,
//! `contact.merged` / `company.merged`). Trashed deals are moved too: references are kept in
//! the trash, and a restored deal must point at the record that still exists.

use crm_tenant::{DbError, TenantTx};

use super::DealRow;
use super::deals::{DEAL_COLUMNS, deal_from};

/// Deals whose primary contact or one of whose contacts is among `merged` now have
/// `survivor` instead; returns the changed deals (empty on a second run: idempotent).
///
/// A deal listing both a merged contact and the survivor (or two merged contacts) keeps one
/// row for the survivor: the survivor's own, else the earliest added merged one (its role).
pub async fn move_contact(tx: &TenantTx, survivor: i32, merged: &[i32]) -> Result<Vec<DealRow>, DbError> {
    let copy = tx
        .prepare_cached(
            "INSERT INTO deal_contacts (deal_id, contact_id, role, created_at, created_by)
             SELECT DISTINCT ON (deal_id) deal_id, $1, role, created_at, created_by
             FROM deal_contacts WHERE contact_id = ANY($2) ORDER BY deal_id, created_at, contact_id
             ON CONFLICT (deal_id, contact_id) DO NOTHING",
        )
        .await?;
    tx.execute(&copy, &[&survivor, &merged]).await?;
    let remove = tx.prepare_cached("DELETE FROM deal_contacts WHERE contact_id = ANY($1) RETURNING deal_id").await?;
    let touched: Vec<i32> = tx.query(&remove, &[&merged]).await?.iter().map(|r| r.get(0)).collect();
    let sql = format!(
        "UPDATE deals AS d
            SET primary_contact_id = CASE WHEN d.primary_contact_id = ANY($2) THEN $1 ELSE d.primary_contact_id END,
                updated_at = now()
          WHERE d.primary_contact_id = ANY($2) OR d.id = ANY($3)
         RETURNING {DEAL_COLUMNS}"
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let mut rows: Vec<DealRow> = tx.query(&stmt, &[&survivor, &merged, &touched]).await?.iter().map(deal_from).collect();
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// Deals of a company among `merged` now belong to `survivor`; returns the changed deals.
pub async fn move_company(tx: &TenantTx, survivor: i32, merged: &[i32]) -> Result<Vec<DealRow>, DbError> {
    let sql = format!("UPDATE deals AS d SET company_id = $1, updated_at = now() WHERE d.company_id = ANY($2) RETURNING {DEAL_COLUMNS}");
    let stmt = tx.prepare_cached(&sql).await?;
    let mut rows: Vec<DealRow> = tx.query(&stmt, &[&survivor, &merged]).await?.iter().map(deal_from).collect();
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}
