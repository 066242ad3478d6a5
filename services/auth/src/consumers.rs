//! Event consumers of auth-service (durable JetStream pull consumers run by
//! `crm_events::run_consumer`: each event applied once, in the transaction that records it
//! in `processed_events`).

use std::sync::Arc;

use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError};
use crm_tenant::TenantTx;
use futures::future::BoxFuture;

use crate::service::audit;

/// The audit log's consumer: every subject of the stream (no filter), each event recorded
/// in its tenant's `audit_log` ([`audit::record`]). `prefix` names the durable consumer
/// (production: [`crate::CONSUMER_PREFIX`]; tests: their own).
pub fn audit_consumer(prefix: &str, retention_days: u32) -> (ConsumerSpec, Arc<dyn EventHandler>) {
    (ConsumerSpec::new(format!("{prefix}-audit-log"), ""), Arc::new(RecordAudit { retention_days }))
}

/// Every event -> one audit log row.
pub struct RecordAudit {
    retention_days: u32,
}

impl EventHandler for RecordAudit {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move { Ok(audit::record(tx, event, self.retention_days).await?) })
    }
}
