//! Event consumers (durable JetStream pull consumers run by `crm_events::run_consumer`: each
//! event is applied once per consumer, in the transaction that records it as processed;
//! failures are retried with back-off, then parked in `dead_letters`):
//!
//! * `company.deleted` -> [`deals::drop_company`]: the company's deals drop `company_id`.
//! * `contact.deleted` -> [`deals::drop_contact`]: deals drop the contact as primary contact
//!   and from their contacts.
//!
//! Each changed deal publishes `deal.updated`. Both are idempotent by themselves too: a second
//! delivery finds no deal left pointing at the record.

use std::sync::Arc;

use crm_client_contact::subjects::{COMPANY_DELETED, CONTACT_DELETED};
use crm_client_contact::{CompanyBasicInfo, ContactBasicInfo};
use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError};
use crm_tenant::TenantTx;
use futures::future::BoxFuture;

use crate::service::deals;

/// The consumers of this service, durable names prefixed with `prefix`
/// ([`crate::CONSUMER_PREFIX`] in production).
pub fn consumers(prefix: &str) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
    vec![
        (ConsumerSpec::new(format!("{prefix}-company-deleted"), COMPANY_DELETED), Arc::new(CompanyDeleted) as Arc<dyn EventHandler>),
        (ConsumerSpec::new(format!("{prefix}-contact-deleted"), CONTACT_DELETED), Arc::new(ContactDeleted)),
    ]
}

/// The user who deleted the record (attributed on the `deal.updated` events).
fn actor(event: &Envelope) -> Option<i32> {
    event.actor.as_deref().and_then(|a| a.parse().ok())
}

fn failed(e: crm_web::ApiError) -> HandlerError {
    HandlerError::msg(e.to_string())
}

pub struct CompanyDeleted;

impl EventHandler for CompanyDeleted {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let company: CompanyBasicInfo = event.data_as()?;
            deals::drop_company(tx, actor(event), company.id).await.map_err(failed)?;
            Ok(())
        })
    }
}

pub struct ContactDeleted;

impl EventHandler for ContactDeleted {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let contact: ContactBasicInfo = event.data_as()?;
            deals::drop_contact(tx, actor(event), contact.id).await.map_err(failed)?;
            Ok(())
        })
    }
}
