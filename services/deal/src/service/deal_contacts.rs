//! The contacts of a deal (besides its primary contact), each with a role.

use crm_client_deal::DealContactInfo;
use crm_tenant::TenantTx;
use crm_web::{ApiError, Can, perm};

use super::own_only;
use crate::AppState;
use crate::input::NewDealContact;
use crate::lookup::Wanted;
use crate::repo::deal_contacts as repo;
use crate::repo::{DealRow, deals};

/// The deal, locked, when the caller may change it.
async fn deal_to_change(tx: &TenantTx, can: &Can<perm::DealsWrite>, id: i32) -> Result<DealRow, ApiError> {
    let deal = deals::deal_for_update(tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    if !can.reaches([deal.fields.owner_id, deal.created_by]) {
        return Err(own_only("change"));
    }
    Ok(deal)
}

/// Adds a contact (checked with contact-service) to the deal; 409 when it is on it already.
pub async fn add_deal_contact(
    state: &AppState,
    can: &Can<perm::DealsWrite>,
    deal_id: i32,
    input: &NewDealContact,
) -> Result<DealContactInfo, ApiError> {
    let (contact_id, role) = input.parse()?;
    // The deal first (404/403 before asking contact-service), holding neither its lock nor
    // a pooled connection during the remote call; the foreign key keeps the insert honest.
    {
        let tx = state.db.tenant(&can.tenant_id).await?;
        deal_to_change(&tx, can, deal_id).await?;
        tx.rollback().await?;
    }
    let contact = state.lookups.check_contact(&can.ctx, contact_id).await?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let row = repo::add_deal_contact(&tx, deal_id, contact_id, &role, can.user_id)
        .await?
        .ok_or_else(|| ApiError::conflict(crm_web::codes::CONTACT_ON_DEAL, "the contact is already on this deal"))?;
    tx.commit().await?;
    Ok(DealContactInfo {
        deal_id: row.deal_id,
        contact_id: row.contact_id,
        role: row.role,
        contact_name: Some(contact.full_name()),
        contact_email: Some(contact.email),
        created_at: row.created_at,
    })
}

pub async fn list_deal_contacts(state: &AppState, can: &Can<perm::DealsRead>, deal_id: i32) -> Result<Vec<DealContactInfo>, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    deals::deal_by_id(&tx, deal_id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    let rows = repo::list_deal_contacts(&tx, deal_id).await?;
    tx.commit().await?;
    let wanted = Wanted { contacts: rows.iter().map(|r| r.contact_id).collect(), ..Wanted::default() };
    let names = state.lookups.names(&can.ctx, &wanted).await;
    Ok(rows
        .into_iter()
        .map(|r| {
            let contact = names.contacts.get(&r.contact_id);
            DealContactInfo {
                deal_id: r.deal_id,
                contact_id: r.contact_id,
                role: r.role,
                contact_name: contact.map(|c| c.full_name()),
                contact_email: contact.map(|c| c.email.clone()),
                created_at: r.created_at,
            }
        })
        .collect())
}

pub async fn remove_deal_contact(state: &AppState, can: &Can<perm::DealsWrite>, deal_id: i32, contact_id: i32) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    deal_to_change(&tx, can, deal_id).await?;
    if !repo::remove_deal_contact(&tx, deal_id, contact_id).await? {
        return Err(ApiError::not_found("contact on this deal"));
    }
    tx.commit().await?;
    Ok(())
}
