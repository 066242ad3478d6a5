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
//! * `contact.merged`, `company.merged` (issue 16) -> [`references::move_contact`],
//!   [`references::move_company`]: references move from the merged records to the survivor.
//! * `email.queued` (internal) -> [`emails::deliver_queued`]: delivery of an email queued by
//!   `POST /emails`, with open pixel and signed click links; `email.sent`.
//! * every event (`>`) -> [`rules::match_event`]: a recorded run of each enabled automation
//!   rule it triggers (run by the poll loop, `service::scheduler`).
//! * `contact.consent_changed` -> the contact's sequences stop when consent is withdrawn.
//! * `contact.became_inactive` -> [`tasks::follow_up_inactive`]: a follow-up task for the
//!   owner, at most one open per contact.
//!
//! * every event (all subjects; [`webhook_consumer`]) -> [`webhooks::fan_out`]: one delivery per webhook
//!   subscribed to its type.
//!
//! Rows created from an event carry its id in `source_event_id` (unique), a second guard
//! next to `processed_events`.

use std::sync::Arc;

use crm_client_auth::subjects::USER_PASSWORD_RESET_REQUESTED;
use crm_client_communication::EmailEvent;
use crm_client_communication::subjects::EMAIL_QUEUED;
use crm_client_deal::DealClosedEvent;
use crm_client_contact::RecordsMerged;
use crm_client_contact::subjects::{COMPANY_DELETED, COMPANY_MERGED, CONTACT_DELETED, CONTACT_MERGED};
use crm_client_deal::subjects::{DEAL_CLOSED_WON, DEAL_DELETED};
use crm_client_tenant::InvitationInfo;
use crm_client_tenant::subjects::TENANT_USER_INVITED;
use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError};
use crm_tenant::TenantTx;
use futures::future::BoxFuture;

use crate::AppState;
use crate::repo::references::Gone;
use crate::service::emails::PasswordReset;
use crate::service::{activities, emails, references, rules, sequences, tasks, webhooks};

/// contact-service: a contact's marketing consent changed (`{contact_id, status, previous,
/// source, at}`).
pub const CONTACT_CONSENT_CHANGED: &str = "contact.consent_changed";
/// contact-service: a lead or prospect had no contact for the tenant's inactivity period.
pub const CONTACT_BECAME_INACTIVE: &str = "contact.became_inactive";

/// The consumers of this service, durable names prefixed with `prefix`
/// ([`crate::CONSUMER_PREFIX`] in production).
pub fn consumers(state: &AppState, prefix: &str) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
    let state = Arc::new(state.clone());
    vec![
        (ConsumerSpec::new(format!("{prefix}-deal-closed-won"), DEAL_CLOSED_WON), Arc::new(DealClosedWon(state.clone())) as Arc<dyn EventHandler>),
        (ConsumerSpec::new(format!("{prefix}-user-invited"), TENANT_USER_INVITED), Arc::new(UserInvited(state.clone()))),
        (ConsumerSpec::new(format!("{prefix}-password-reset"), USER_PASSWORD_RESET_REQUESTED), Arc::new(ResetRequested(state.clone()))),
        (ConsumerSpec::new(format!("{prefix}-email-delivery"), EMAIL_QUEUED), Arc::new(DeliverEmail(state.clone()))),
        (ConsumerSpec::new(format!("{prefix}-contact-deleted"), CONTACT_DELETED), Arc::new(RecordGone(Gone::Contact))),
        (ConsumerSpec::new(format!("{prefix}-company-deleted"), COMPANY_DELETED), Arc::new(RecordGone(Gone::Company))),
        (ConsumerSpec::new(format!("{prefix}-deal-deleted"), DEAL_DELETED), Arc::new(RecordGone(Gone::Deal))),
        (ConsumerSpec::new(format!("{prefix}-contact-merged"), CONTACT_MERGED), Arc::new(RecordsMergedHandler::Contact)),
        (ConsumerSpec::new(format!("{prefix}-company-merged"), COMPANY_MERGED), Arc::new(RecordsMergedHandler::Company)),
        (ConsumerSpec::new(format!("{prefix}-automation-triggers"), ">"), Arc::new(RuleTriggers(state.clone()))),
        (ConsumerSpec::new(format!("{prefix}-consent-changed"), CONTACT_CONSENT_CHANGED), Arc::new(ConsentChanged)),
        (ConsumerSpec::new(format!("{prefix}-contact-inactive"), CONTACT_BECAME_INACTIVE), Arc::new(ContactInactive)),
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

/// `contact.merged`, `company.merged` (issue 16): references move to the survivor
/// ([`references::move_contact`], [`references::move_company`]).
pub enum RecordsMergedHandler {
    Contact,
    Company,
}

impl EventHandler for RecordsMergedHandler {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let m: RecordsMerged = event.data_as()?;
            match self {
                Self::Contact => references::move_contact(tx, m.survivor_id, &m.merged_ids).await,
                Self::Company => references::move_company(tx, m.survivor_id, &m.merged_ids).await,
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

/// The consumer feeding webhooks: every event of the stream (filter `>`: all subject
/// families), one delivery per subscribed webhook ([`webhooks::fan_out`]). Started by
/// `build()` next to [`consumers`] (kept apart so tests of other features do not run a
/// consumer of every subject).
pub fn webhook_consumer(state: &AppState, prefix: &str) -> (ConsumerSpec, Arc<dyn EventHandler>) {
    (ConsumerSpec::new(format!("{prefix}-webhooks"), ">"), Arc::new(FanOutToWebhooks(Arc::new(state.clone()))))
}

/// Every event -> the webhooks subscribed to its type.
pub struct FanOutToWebhooks(Arc<AppState>);

impl EventHandler for FanOutToWebhooks {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move { Ok(webhooks::fan_out(&self.0, tx, event).await?) })
    }
}

/// Every event: the automation rules it triggers get a recorded run.
pub struct RuleTriggers(Arc<AppState>);

impl EventHandler for RuleTriggers {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if rules::match_event(tx, event).await? > 0 {
                // Visited for a few seconds from now: the run is seen once this commits.
                self.0.automation.touch(tx.tenant_id());
            }
            if event.r#type == crm_client_tenant::subjects::TENANT_SETTINGS_UPDATED {
                self.0.automation.forget_policy(tx.tenant_id());
            }
            Ok(())
        })
    }
}

/// The part of `contact.consent_changed` this service needs.
#[derive(Debug, serde::Deserialize)]
struct ConsentChange {
    contact_id: i32,
    status: String,
}

/// `contact.consent_changed`: withdrawn consent stops the contact's sequences at once (the
/// consent check before each step would skip them anyway).
pub struct ConsentChanged;

impl EventHandler for ConsentChanged {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let change: ConsentChange = event.data_as()?;
            if change.status == "withdrawn" {
                let stopped = sequences::stop_for_contact(tx, change.contact_id, "consent_withdrawn").await?;
                tracing::info!(contact_id = change.contact_id, stopped, "consent withdrawn: sequences stopped");
            }
            Ok(())
        })
    }
}

/// `contact.became_inactive`: a follow-up task for the owner.
pub struct ContactInactive;

impl EventHandler for ContactInactive {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let lead: tasks::BecameInactive = event.data_as()?;
            tasks::follow_up_inactive(tx, event, &lead).await
        })
    }
}
