//! Event consumers (durable JetStream pull consumers run by `crm_events::run_consumer`: each
//! event is applied once per consumer, in the transaction that records it as processed;
//! failures are retried with back-off, then parked in `dead_letters`). Each one reads its
//! payload and calls a use case of [`crate::service`]:
//!
//! * `deal.closed_won` -> [`activities::record_deal_won`]: activity on the deal, its primary
//!   contact and company, plus a follow-up task for the owner.
//! * `tenant.user_invited` -> [`emails::send_invitation`]: invitation email with the accept link.
//! * `user.password_reset_requested` -> [`emails::send_password_reset`]: reset email.
//! * `contact.deleted` -> [`references::contact_erased`]: the person's emails and the
//!   activities and tasks about them are deleted (an erasure keeps no email content or address).
//! * `company.deleted`, `deal.deleted` -> [`references::company_deleted`],
//!   [`references::deal_deleted`]: references dropped (`null`) from activities, tasks, emails.
//! * `email.queued` (internal) -> [`emails::deliver_queued`]: delivery of an email queued by
//!   `POST /emails`, with open pixel and signed click links; `email.sent`.
//!
//! Rows created from an event carry its id in `source_event_id` (unique), a second guard
//! next to `processed_events`.

use std::sync::Arc;

use crm_client_auth::subjects::USER_PASSWORD_RESET_REQUESTED;
use crm_client_communication::EmailEvent;
use crm_client_communication::subjects::EMAIL_QUEUED;
use crm_client_deal::DealClosedEvent;
use crm_client_contact::subjects::{COMPANY_DELETED, CONTACT_DELETED};
use crm_client_deal::subjects::{DEAL_CLOSED_WON, DEAL_DELETED};
use crm_client_tenant::InvitationInfo;
use crm_client_tenant::subjects::TENANT_USER_INVITED;
use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError};
use crm_tenant::TenantTx;
use futures::future::BoxFuture;

use crate::AppState;
use crate::repo::references::Gone;
use crate::service::emails::PasswordReset;
use crate::service::{activities, emails, references};

/// The consumers of this service, durable names prefixed with `prefix`
/// ([`crate::CONSUMER_PREFIX`] in production).
pub fn consumers(state: &AppState, prefix: &str) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
    let state = Arc::new(state.clone());
    vec![
        (ConsumerSpec::new(format!("{prefix}-deal-closed-won"), DEAL_CLOSED_WON), Arc::new(DealClosedWon(state.clone())) as Arc<dyn EventHandler>),
        (ConsumerSpec::new(format!("{prefix}-user-invited"), TENANT_USER_INVITED), Arc::new(UserInvited(state.clone()))),
        (ConsumerSpec::new(format!("{prefix}-password-reset"), USER_PASSWORD_RESET_REQUESTED), Arc::new(ResetRequested(state.clone()))),
        (ConsumerSpec::new(format!("{prefix}-email-delivery"), EMAIL_QUEUED), Arc::new(DeliverEmail(state))),
        (ConsumerSpec::new(format!("{prefix}-contact-deleted"), CONTACT_DELETED), Arc::new(RecordGone(Gone::Contact))),
        (ConsumerSpec::new(format!("{prefix}-company-deleted"), COMPANY_DELETED), Arc::new(RecordGone(Gone::Company))),
        (ConsumerSpec::new(format!("{prefix}-deal-deleted"), DEAL_DELETED), Arc::new(RecordGone(Gone::Deal))),
    ]
}

/// The part of a `*.deleted` payload this service needs (the rest of `ContactBasicInfo`,
/// `CompanyBasicInfo`, `DealBasicInfo` is ignored).
#[derive(Debug, serde::Deserialize)]
struct GoneRecord {
    id: i32,
}

/// `contact.deleted`, `company.deleted`, `deal.deleted`.
pub struct RecordGone(Gone);

impl EventHandler for RecordGone {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let gone: GoneRecord = event.data_as()?;
            match self.0 {
                Gone::Contact => references::contact_erased(tx, gone.id).await,
                Gone::Company => references::company_deleted(tx, gone.id).await,
                Gone::Deal => references::deal_deleted(tx, gone.id).await,
            }
        })
    }
}

pub struct DealClosedWon(Arc<AppState>);

impl EventHandler for DealClosedWon {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let deal: DealClosedEvent = event.data_as()?;
            activities::record_deal_won(tx, self.0.settings.follow_up_days, event, &deal).await
        })
    }
}

pub struct UserInvited(Arc<AppState>);

impl EventHandler for UserInvited {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let invitation: InvitationInfo = event.data_as()?;
            emails::send_invitation(&self.0, tx, event, &invitation).await
        })
    }
}

pub struct ResetRequested(Arc<AppState>);

impl EventHandler for ResetRequested {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let reset: PasswordReset = event.data_as()?;
            emails::send_password_reset(&self.0, tx, event, &reset).await
        })
    }
}

pub struct DeliverEmail(Arc<AppState>);

impl EventHandler for DeliverEmail {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let queued: EmailEvent = event.data_as()?;
            emails::deliver_queued(&self.0, tx, &queued).await
        })
    }
}
