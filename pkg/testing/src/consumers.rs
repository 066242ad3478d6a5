//! A service's event consumers under test: each runs as in production (`run_consumer`), on a
//! durable consumer of its own that sees only events published from now on, and applies only
//! the events of the test's own tenants (other tests share the stream in parallel).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError};
use crm_tenant::{TenantId, TenantTx};
use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::TestPlatform;

/// The tenants whose events the test consumers apply.
#[derive(Clone, Default)]
pub struct TestTenants(Arc<Mutex<HashSet<String>>>);

impl TestTenants {
    pub fn watch(&self, tenant: &TenantId) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(tenant.to_string());
    }

    fn contains(&self, tenant: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains(tenant)
    }
}

/// Starts `consumers` (as a service's `consumers(..)` returns them) with short retries when
/// `fast_retries` (backoff 50/100 ms, 3 deliveries: poison-message tests); returns the tasks.
pub async fn start_consumers(
    platform: &TestPlatform,
    tenants: &TestTenants,
    consumers: Vec<(ConsumerSpec, Arc<dyn EventHandler>)>,
    fast_retries: bool,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (mut spec, handler) in consumers {
        if fast_retries {
            spec.backoff = vec![Duration::from_millis(50), Duration::from_millis(100)];
            spec.max_deliver = 3;
        }
        precreate(platform, &spec).await;
        let handler: Arc<dyn EventHandler> = Arc::new(OnlyTenants { tenants: tenants.clone(), inner: handler });
        let run = crm_events::run_consumer(platform.pool.clone(), platform.jetstream.clone(), spec, handler, std::future::pending());
        tasks.push(tokio::spawn(run));
    }
    tasks
}

/// Creates the durable consumer before `run_consumer` opens it, delivering only events
/// published from now on (the stream holds every other test's history) and expiring once
/// the test is gone.
async fn precreate(platform: &TestPlatform, spec: &ConsumerSpec) {
    let stream = platform.jetstream.get_stream(crm_events::STREAM_NAME).await.expect("the CRM stream");
    stream
        .create_consumer(pull::Config {
            durable_name: Some(spec.durable_name.clone()),
            filter_subject: spec.filter_subject.clone(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::New,
            ack_wait: spec.ack_wait,
            inactive_threshold: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .expect("create the test consumer");
}

/// Applies only the events of this test's tenants.
struct OnlyTenants {
    tenants: TestTenants,
    inner: Arc<dyn EventHandler>,
}

impl EventHandler for OnlyTenants {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        if self.tenants.contains(&event.tenant_id) { self.inner.handle(tx, event) } else { Box::pin(async { Ok(()) }) }
    }
}
