//! Event consumers (durable JetStream pull consumers run by `crm_events::run_consumer`: each
//! event is applied once per consumer, in the transaction that records it as processed;
//! failures are retried with back-off, then parked in `dead_letters`):
//!
//! * `company.deleted` -> [`deals::drop_company`]: the company's deals drop `company_id`.
//! * `contact.deleted` -> [`deals::drop_contact`]: deals drop the contact as primary contact
//!   and from their contacts.
//!
//! * `contact.merged` / `company.merged` (issue 16) -> [`merge::move_contact`] /
//!   [`merge::move_company`]: deals, deal contacts and deal companies move from the merged
//!   records to the survivor.
//!
//! Each changed deal publishes `deal.updated`. All are idempotent by themselves too: a second
//! delivery finds no deal left pointing at the record.

use std::sync::Arc;

use crm_client_contact::subjects::{COMPANY_DELETED, COMPANY_MERGED, CONTACT_DELETED, CONTACT_MERGED};
use crm_client_contact::{CompanyBasicInfo, ContactBasicInfo, RecordsMerged};
use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError};
use crm_tenant::TenantTx;
use futures::future::BoxFuture;

use crate::service::{deals, merge};

/// The consumers of this service, durable names prefixed with `prefix`
/// ([`crate::CONSUMER_PREFIX`] in production).
pub fn consumers(prefix: &str) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
    vec![
        (ConsumerSpec::new(format!("{prefix}-company-deleted"), COMPANY_DELETED), Arc::new(CompanyDeleted) as Arc<dyn EventHandler>),
        (ConsumerSpec::new(format!("{prefix}-contact-deleted"), CONTACT_DELETED), Arc::new(ContactDeleted)),
        (ConsumerSpec::new(format!("{prefix}-contact-merged"), CONTACT_MERGED), Arc::new(Merged::Contact)),
        (ConsumerSpec::new(format!("{prefix}-company-merged"), COMPANY_MERGED), Arc::new(Merged::Company)),
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

/// `contact.merged` / `company.merged`: references move to the survivor.
pub enum Merged {
    Contact,
    Company,
}

impl EventHandler for Merged {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let m: RecordsMerged = event.data_as()?;
            let actor = actor(event).or(Some(m.merged_by));
            match self {
                Self::Contact => merge::move_contact(tx, actor, m.survivor_id, &m.merged_ids).await.map_err(failed)?,
                Self::Company => merge::move_company(tx, actor, m.survivor_id, &m.merged_ids).await.map_err(failed)?,
            };
            Ok(())
        })
    }
}
