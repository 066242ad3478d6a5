//! `contact.merged` / `company.merged` (issue 16): every deal reference to a merged record
//! moves to the survivor, each changed deal publishing `deal.updated` (attributed to the
//! user who merged), in the consumer's transaction.
//!
//! Idempotent (a second delivery finds nothing left pointing at a merged id) and
//! order-independent among merges (each moves what points at its own merged ids; a chain
//! A -> B then B -> C ends with everything on C whichever is applied first, since the second
//! merge of B is refused by contact-service: a merged record is in the trash). A deal written
//! AFTER the merge cannot name a merged contact through the API: contact-service answers
//! "not found" for a trashed record, so the write is refused (422). Only a write validated
//! before the merge committed and committed after this consumer ran keeps the merged id (a
//! window of one request); it stays visible as a reference to a trashed record.

use crm_client_deal::subjects::DEAL_UPDATED;
use crm_events::publish;
use crm_tenant::TenantTx;
use crm_web::ApiError;

use super::basic;
use crate::repo::merge as repo;

/// Moves deals and deal contacts from `merged` to `survivor`; the number of changed deals.
pub async fn move_contact(tx: &TenantTx, actor: Option<i32>, survivor: i32, merged: &[i32]) -> Result<usize, ApiError> {
    let merged: Vec<i32> = merged.iter().copied().filter(|id| *id != survivor).collect();
    if merged.is_empty() {
        return Ok(0);
    }
    let rows = repo::move_contact(tx, survivor, &merged).await?;
    for row in &rows {
        publish(tx, actor, DEAL_UPDATED, basic(row)).await?;
    }
    Ok(rows.len())
}

/// Moves deals from the `merged` companies to `survivor`; the number of changed deals.
pub async fn move_company(tx: &TenantTx, actor: Option<i32>, survivor: i32, merged: &[i32]) -> Result<usize, ApiError> {
    let merged: Vec<i32> = merged.iter().copied().filter(|id| *id != survivor).collect();
    if merged.is_empty() {
        return Ok(0);
    }
    let rows = repo::move_company(tx, survivor, &merged).await?;
    for row in &rows {
        publish(tx, actor, DEAL_UPDATED, basic(row)).await?;
    }
    Ok(rows.len())
}
