//! The spare-schema refill: a background task returned by [`crate::build`] (not started by
//! it), calling [`crate::service::spares`].

use std::sync::Arc;
use std::time::Duration;

use crm_runtime::Task;
use crm_tenant::TenantDb;
use tokio::sync::Notify;

pub use crate::service::spares::create_spare;
use crate::service::spares::refill;

/// Keeps `target` spares ready: refills at start, when woken (a signup took one) and every 30 s.
pub fn refill_task(db: TenantDb, target: i64, wake: Arc<Notify>) -> Task {
    let future = async move {
        loop {
            if let Err(e) = refill(&db, target).await {
                tracing::warn!(error = %e, "could not refill spare tenant schemas");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    };
    Task { name: "spare schema refill", future: Box::pin(future) }
}
