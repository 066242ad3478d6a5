//! Marketing consent of contacts (issue 15; GDPR art. 7): read the record, set it (granted or
//! withdrawn, with where it came from), and withdraw it when a recipient unsubscribes
//! (`email.unsubscribed`). A change of status publishes `contact.consent_changed`, which
//! communication-service uses to stop marketing to the contact.

use crm_client_contact::subjects::CONTACT_CONSENT_CHANGED;
use crm_client_contact::{ConsentRecord, ContactConsentChanged, MarketingConsent};
use crm_events::{Envelope, publish};
use crm_tenant::TenantTx;
use crm_web::{ApiError, Can, FieldErrors, perm, validate};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::repo::consent as repo;
use crate::repo::contacts::contact_for_update;

/// Longest `source` (the column is VARCHAR(100)).
pub const MAX_SOURCE_LEN: usize = 100;
/// The source recorded when a recipient unsubscribes with a marketing email's link.
pub const UNSUBSCRIBE_SOURCE: &str = "unsubscribe";

/// Body of `PUT /contacts/{id}/consent`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// `granted` or `withdrawn` (`unknown` is only the state before anything was recorded).
    pub status: String,
    /// Where the consent was given or withdrawn, e.g. `web_form`, `phone`, `event_signup`
    /// (single line, 1-100 characters): the evidence GDPR art. 7(1) asks for.
    pub source: String,
}

async fn record_of(tx: &TenantTx, contact_id: i32) -> Result<ConsentRecord, ApiError> {
    let (status, updated_at, source) = repo::current(tx, contact_id, false).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    let history = repo::history(tx, contact_id).await?;
    Ok(ConsentRecord { contact_id, status, updated_at, source, history })
}

/// `GET /contacts/{id}/consent`.
pub async fn get(state: &AppState, can: &Can<perm::ContactsRead>, contact_id: i32) -> Result<ConsentRecord, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let record = record_of(&tx, contact_id).await?;
    tx.commit().await?;
    Ok(record)
}

/// `PUT /contacts/{id}/consent`: records the status and source (a history row every time: a
/// renewed consent is evidence too); publishes `contact.consent_changed` when the status
/// changes. Sales reps set it on the contacts they own.
pub async fn set(state: &AppState, can: &Can<perm::ContactsWrite>, contact_id: i32, input: ConsentInput) -> Result<ConsentRecord, ApiError> {
    let mut errors = FieldErrors::new();
    let status = match MarketingConsent::parse(input.status.trim()) {
        Some(s @ (MarketingConsent::Granted | MarketingConsent::Withdrawn)) => Some(s),
        _ => {
            errors.add("status", "must be granted or withdrawn");
            None
        }
    };
    let source = validate::text(&mut errors, "source", &input.source, MAX_SOURCE_LEN);
    errors.into_result()?;
    let Some(status) = status else { return Err(ApiError::internal("consent status checked above")) };

    let tx = state.db.tenant(&can.tenant_id).await?;
    let contact = contact_for_update(&tx, contact_id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    if !can.reaches([contact.owner_id, Some(contact.created_by)]) {
        return Err(ApiError::forbidden("sales reps change only the contacts they own"));
    }
    let previous = contact.marketing_consent;
    let at = repo::record(&tx, contact_id, status, previous, &source, Some(can.user_id), None).await?;
    if status != previous {
        let event = ContactConsentChanged { contact_id, status, previous, source, at };
        publish(&tx, Some(can.user_id), CONTACT_CONSENT_CHANGED, event).await?;
    }
    let record = record_of(&tx, contact_id).await?;
    tx.commit().await?;
    Ok(record)
}

/// The `email.unsubscribed` consumer: withdraws the consent of the email's contact (by id,
/// or by the address when the email had no contact), source `unsubscribe`, and publishes
/// `contact.consent_changed`. Already withdrawn, or no such contact: nothing to do.
pub async fn withdraw_by_unsubscribe(tx: &TenantTx, event: &Envelope, contact_id: Option<i32>, email_address: &str) -> Result<(), ApiError> {
    let contact_id = match contact_id {
        Some(id) => Some(id),
        None if !email_address.trim().is_empty() => repo::contact_by_email(tx, email_address.trim()).await?,
        None => None,
    };
    let Some(contact_id) = contact_id else { return Ok(()) };
    let Some((previous, _, _)) = repo::current(tx, contact_id, true).await? else { return Ok(()) };
    if previous == MarketingConsent::Withdrawn {
        return Ok(());
    }
    let status = MarketingConsent::Withdrawn;
    let at = repo::record(tx, contact_id, status, previous, UNSUBSCRIBE_SOURCE, None, Some(&event.id)).await?;
    let changed = ContactConsentChanged { contact_id, status, previous, source: UNSUBSCRIBE_SOURCE.to_owned(), at };
    publish(tx, None, CONTACT_CONSENT_CHANGED, changed).await?;
    Ok(())
}
