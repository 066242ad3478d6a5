//! Records of other services that are gone for good, through their events:
//!
//! * `contact.deleted` -> [`contact_erased`]: the person's emails (address, subject, bodies,
//!   tracking) and the activities and tasks people wrote about them are deleted; rows the
//!   platform generated from another record's event (a won deal's note and follow-up task)
//!   stay, without the person. Deleted, not anonymised: an email's body, an activity's notes
//!   and a task's title are free text about the person, which no rule can reliably strip of
//!   personal data, and an erasure must not keep them.
//! * `company.deleted` -> [`company_deleted`], `deal.deleted` -> [`deal_deleted`]: the
//!   references are dropped (`null`), the rows stay.
//!
//! Each records the record as gone (`gone_references`) in the same transaction. That makes
//! the consumers idempotent (a second delivery finds nothing more to change) and out-of-order
//! safe: a row written afterwards (an earlier event applied late, a request racing the
//! deletion) is checked against it ([`without_gone`], [`refuse_gone`]), so the end state does
//! not depend on the order events arrive in.

use crm_events::HandlerError;
use crm_tenant::TenantTx;
use crm_web::{ApiError, codes};

use crate::repo::references::{self as repo, Gone};

pub async fn contact_erased(tx: &TenantTx, id: i32) -> Result<(), HandlerError> {
    repo::record(tx, Gone::Contact, id).await?;
    let erased = repo::erase_contact(tx, id).await?;
    // Sequences stop for a deleted contact (issue 15).
    crate::repo::sequences::stop(tx, None, Some(id), "contact_deleted").await?;
    tracing::info!(contact_id = id, ?erased, "contact erased: its emails, activities and tasks removed");
    Ok(())
}

pub async fn company_deleted(tx: &TenantTx, id: i32) -> Result<(), HandlerError> {
    repo::record(tx, Gone::Company, id).await?;
    let rows = repo::drop_company(tx, id).await?;
    tracing::debug!(company_id = id, rows, "references to a deleted company dropped");
    Ok(())
}

pub async fn deal_deleted(tx: &TenantTx, id: i32) -> Result<(), HandlerError> {
    repo::record(tx, Gone::Deal, id).await?;
    let rows = repo::drop_deal(tx, id).await?;
    tracing::debug!(deal_id = id, rows, "references to a deleted deal dropped");
    Ok(())
}

/// The references of a row an event writes, without those gone meanwhile (an event applied
/// after the deletion leaves the same state as one applied before it).
pub async fn without_gone(
    tx: &TenantTx,
    contact: Option<i32>,
    company: Option<i32>,
    deal: Option<i32>,
) -> Result<(Option<i32>, Option<i32>, Option<i32>), HandlerError> {
    let (c, co, d) = repo::which_gone(tx, contact, company, deal).await?;
    Ok((contact.filter(|_| !c), company.filter(|_| !co), deal.filter(|_| !d)))
}

/// A request's references, inside its transaction: 422 `REFERENCE_NOT_FOUND` naming the
/// field when one is gone (the owning service confirmed it before the deletion committed).
pub async fn refuse_gone(tx: &TenantTx, contact: Option<i32>, company: Option<i32>, deal: Option<i32>) -> Result<(), ApiError> {
    let (c, co, d) = repo::which_gone(tx, contact, company, deal).await?;
    let gone = [(c, "contact_id", "contact", contact), (co, "company_id", "company", company), (d, "deal_id", "deal", deal)];
    match gone.into_iter().find(|(g, ..)| *g) {
        None => Ok(()),
        Some((_, field, what, id)) => {
            let message = format!("{what} {} does not exist", id.unwrap_or_default());
            Err(ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, message.clone()).with_details(serde_json::json!({"fields": {field: message}})))
        }
    }
}

/// Issue 16, `contact.merged`: every reference to a merged contact moves to the survivor
/// ([`repo::move_contact`]), in the consumer's transaction. Idempotent (a second delivery
/// finds nothing left on the merged ids). If the survivor was erased meanwhile (its
/// `contact.deleted` applied first), what moved to it is erased too, so the end state does
/// not depend on the order of the two events.
///
/// A row written later with a merged id: through the API the write is refused (the merged
/// contact is in the trash, so contact-service's lookup answers "not found"); a row an
/// earlier event writes late (e.g. a won deal's activity applied after the merge) keeps the
/// merged id and is still shown, as a reference to a record in the trash.
pub async fn move_contact(tx: &TenantTx, survivor: i32, merged: &[i32]) -> Result<(), HandlerError> {
    let merged: Vec<i32> = merged.iter().copied().filter(|id| *id != survivor).collect();
    if merged.is_empty() {
        return Ok(());
    }
    let moved = repo::move_contact(tx, survivor, &merged).await?;
    let (survivor_gone, ..) = repo::which_gone(tx, Some(survivor), None, None).await?;
    if survivor_gone {
        repo::erase_contact(tx, survivor).await?;
    }
    tracing::debug!(survivor, ?merged, ?moved, "references to merged contacts moved to the survivor");
    Ok(())
}

/// Issue 16, `company.merged`: activities and notes of the merged companies move to the
/// survivor ([`repo::move_company`]); dropped instead when the survivor is gone. Idempotent.
pub async fn move_company(tx: &TenantTx, survivor: i32, merged: &[i32]) -> Result<(), HandlerError> {
    let merged: Vec<i32> = merged.iter().copied().filter(|id| *id != survivor).collect();
    if merged.is_empty() {
        return Ok(());
    }
    let moved = repo::move_company(tx, survivor, &merged).await?;
    let (_, survivor_gone, _) = repo::which_gone(tx, None, Some(survivor), None).await?;
    if survivor_gone {
        repo::drop_company(tx, survivor).await?;
    }
    tracing::debug!(survivor, ?merged, ?moved, "references to merged companies moved to the survivor");
    Ok(())
}
