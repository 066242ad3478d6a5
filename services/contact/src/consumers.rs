//! Event consumers (durable JetStream pull consumers run by `crm_events::run_consumer`: each
//! event is applied once per consumer, in the transaction that records it as processed;
//! failures are retried with back-off, then parked in `dead_letters`):
//!
//! * `activity.logged` -> [`engagement::record_contacted`] with the activity's
//!   `completed_at` (activities not completed, or without a contact, are not contact);
//! * `email.sent` -> [`engagement::record_contacted`] with the event's time;
//! * `email.unsubscribed` -> [`consent::withdraw_by_unsubscribe`] (source `unsubscribe`,
//!   publishes `contact.consent_changed`).
//!
//! All three are idempotent by themselves too (`GREATEST`; an already withdrawn consent is
//! left alone), so order and redelivery do not matter.

use std::sync::Arc;

use crm_client_communication::subjects::{ACTIVITY_LOGGED, EMAIL_CLICKED, EMAIL_OPENED, EMAIL_SENT, EMAIL_UNSUBSCRIBED};
use crm_client_contact::ContactBasicInfo;
use crm_client_contact::subjects::{CONTACT_CREATED, CONTACT_UPDATED};
use crm_client_communication::{ActivityInfo, EmailEvent, EmailUnsubscribed};
use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError};
use crm_tenant::TenantTx;
use futures::future::BoxFuture;

use crate::service::{consent, engagement, scoring};

/// The consumers of this service, durable names prefixed with `prefix`
/// ([`crate::CONSUMER_PREFIX`] in production).
pub fn consumers(prefix: &str) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
    vec![
        (ConsumerSpec::new(format!("{prefix}-activity-logged"), ACTIVITY_LOGGED), Arc::new(ActivityLogged) as Arc<dyn EventHandler>),
        (ConsumerSpec::new(format!("{prefix}-email-sent"), EMAIL_SENT), Arc::new(EmailSent)),
        (ConsumerSpec::new(format!("{prefix}-email-unsubscribed"), EMAIL_UNSUBSCRIBED), Arc::new(EmailUnsubscribedHandler)),
        // Lead scores (issue 16): durable consumers of their own, so scoring and the
        // engagement above are retried independently.
        (ConsumerSpec::new(format!("{prefix}-score-activity-logged"), ACTIVITY_LOGGED), Arc::new(ScoreSignal::Activity)),
        (ConsumerSpec::new(format!("{prefix}-score-email-opened"), EMAIL_OPENED), Arc::new(ScoreSignal::EmailOpened)),
        (ConsumerSpec::new(format!("{prefix}-score-email-clicked"), EMAIL_CLICKED), Arc::new(ScoreSignal::EmailClicked)),
        (ConsumerSpec::new(format!("{prefix}-score-contact-created"), CONTACT_CREATED), Arc::new(ScoreContactChanged)),
        (ConsumerSpec::new(format!("{prefix}-score-contact-updated"), CONTACT_UPDATED), Arc::new(ScoreContactChanged)),
    ]
}

fn failed(e: crm_web::ApiError) -> HandlerError {
    HandlerError::msg(e.to_string())
}

/// `activity.logged`: a completed activity with a contact is contact at its completion time.
pub struct ActivityLogged;

impl EventHandler for ActivityLogged {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let activity: ActivityInfo = event.data_as()?;
            if let (Some(contact_id), Some(at)) = (activity.contact_id, activity.completed_at) {
                engagement::record_contacted(tx, contact_id, at, event.timestamp).await.map_err(failed)?;
            }
            Ok(())
        })
    }
}

/// `email.sent`: the email's contact was contacted when the event was published.
pub struct EmailSent;

impl EventHandler for EmailSent {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let email: EmailEvent = event.data_as()?;
            if let Some(contact_id) = email.contact_id {
                engagement::record_contacted(tx, contact_id, event.timestamp, event.timestamp).await.map_err(failed)?;
            }
            Ok(())
        })
    }
}

/// `email.unsubscribed`: the recipient withdrew their marketing consent.
pub struct EmailUnsubscribedHandler;

impl EventHandler for EmailUnsubscribedHandler {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let unsubscribed: EmailUnsubscribed = event.data_as()?;
            consent::withdraw_by_unsubscribe(tx, event, unsubscribed.contact_id, &unsubscribed.email_address).await.map_err(failed)?;
            Ok(())
        })
    }
}

/// Lead score signals (issue 16): a completed activity with a contact (its type is the
/// signal's detail, at its completion), an email open or a link click of a contact's email
/// (at the event's time) is recorded once per event and the contact's score recomputed
/// ([`scoring::record_signal`]).
pub enum ScoreSignal {
    Activity,
    EmailOpened,
    EmailClicked,
}

impl EventHandler for ScoreSignal {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let (contact_id, kind, detail, at) = match self {
                Self::Activity => {
                    let a: ActivityInfo = event.data_as()?;
                    match (a.contact_id, a.completed_at) {
                        (Some(c), Some(at)) => (c, "activity", Some(a.r#type), at),
                        _ => return Ok(()),
                    }
                }
                Self::EmailOpened | Self::EmailClicked => {
                    let e: EmailEvent = event.data_as()?;
                    let Some(c) = e.contact_id else { return Ok(()) };
                    let kind = if matches!(self, Self::EmailOpened) { "email_opened" } else { "email_clicked" };
                    (c, kind, None, event.timestamp)
                }
            };
            scoring::record_signal(tx, &event.id, contact_id, kind, detail.as_deref(), at).await.map_err(failed)?;
            Ok(())
        })
    }
}

/// `contact.created` / `contact.updated`: field rules may give other points now.
pub struct ScoreContactChanged;

impl EventHandler for ScoreContactChanged {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let contact: ContactBasicInfo = event.data_as()?;
            scoring::recompute(tx, contact.id, chrono::Utc::now()).await.map_err(failed)?;
            Ok(())
        })
    }
}
