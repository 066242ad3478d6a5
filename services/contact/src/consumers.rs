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

use crm_client_communication::subjects::{ACTIVITY_LOGGED, EMAIL_SENT, EMAIL_UNSUBSCRIBED};
use crm_client_communication::{ActivityInfo, EmailEvent, EmailUnsubscribed};
use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError};
use crm_tenant::TenantTx;
use futures::future::BoxFuture;

use crate::service::{consent, engagement};

/// The consumers of this service, durable names prefixed with `prefix`
/// ([`crate::CONSUMER_PREFIX`] in production).
pub fn consumers(prefix: &str) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
    vec![
        (ConsumerSpec::new(format!("{prefix}-activity-logged"), ACTIVITY_LOGGED), Arc::new(ActivityLogged) as Arc<dyn EventHandler>),
        (ConsumerSpec::new(format!("{prefix}-email-sent"), EMAIL_SENT), Arc::new(EmailSent)),
        (ConsumerSpec::new(format!("{prefix}-email-unsubscribed"), EMAIL_UNSUBSCRIBED), Arc::new(EmailUnsubscribedHandler)),
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
