use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::{DeliverPolicy, PullConsumer, pull}};
use crm_events::{Envelope, OutboxRelay, RelayConfig, STREAM_NAME, enqueue, ensure_stream};
use crm_tenant::{TenantDb, TenantId};
use deadpool_postgres::Pool;
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crm_testing::{NatsServer, provision_tenant, test_pool, wait_until};

pub const WAIT: Duration = Duration::from_secs(30);

pub fn nats_url() -> String {
    std::env::var("NATS_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned())
}

pub async fn jetstream_at(url: &str) -> jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .connect(url)
        .await
        .expect("connect to NATS");
    let js = jetstream::new(client);
    ensure_stream(&js).await.expect("CRM stream");
    js
}

/// A subject of its own under a platform family, e.g. `deal.t01j...`.
pub fn unique_type(family: &str) -> String {
    format!("{family}.t{}", ulid::Ulid::generate().to_string().to_ascii_lowercase())
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase())
}

pub fn event(tenant: &TenantId, event_type: &str, n: usize) -> Envelope {
    Envelope::new(event_type, tenant, Some("1".into()), serde_json::json!({ "n": n })).unwrap()
}

/// Enqueues `count` events in one committed transaction; returns their ids in order.
pub async fn enqueue_committed(pool: &Pool, tenant: &TenantId, event_type: &str, count: usize) -> Vec<String> {
    let db = TenantDb::new(pool.clone());
    let tx = db.tenant(tenant).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..count {
        let e = event(tenant, event_type, n);
        enqueue(&tx, &e).await.unwrap();
        ids.push(e.id);
    }
    tx.commit().await.unwrap();
    ids
}

/// `(id, published, attempts)` of every outbox row of the tenant with this subject.
pub async fn outbox_rows(pool: &Pool, tenant: &TenantId, subject: &str) -> Vec<(String, bool, i32)> {
    let client = pool.get().await.unwrap();
    let sql = format!(
        "SELECT id, published_at IS NOT NULL, attempts FROM {}.outbox WHERE subject = $1 ORDER BY created_at, id",
        tenant.schema().quoted()
    );
    client.query(&sql, &[&subject]).await.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

pub async fn wait_all_published(pool: &Pool, tenant: &TenantId, subject: &str, count: usize) {
    wait_until(&format!("{count} published rows of {subject}"), WAIT, || async {
        let rows = outbox_rows(pool, tenant, subject).await;
        (rows.len() == count && rows.iter().all(|r| r.1)).then_some(())
    })
    .await
}

/// A message as stored in the stream.
#[derive(Debug)]
pub struct Stored {
    pub msg_id: String,
    pub tenant_header: Option<String>,
    pub envelope: Envelope,
}

/// Every message the `CRM` stream holds on `subject` (an ephemeral consumer: the count is
/// the server's own `num_pending`, so a duplicate would show).
pub async fn stored_on(js: &jetstream::Context, subject: &str) -> Vec<Stored> {
    let stream = js.get_stream(STREAM_NAME).await.unwrap();
    let consumer: PullConsumer = stream
        .create_consumer(pull::Config {
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let pending = consumer.cached_info().num_pending as usize;
    let mut out = Vec::new();
    if pending > 0 {
        let mut batch = consumer
            .fetch()
            .max_messages(pending)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .unwrap();
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            let headers = message.headers.clone().unwrap_or_default();
            out.push(Stored {
                msg_id: headers.get("Nats-Msg-Id").map(|v| v.to_string()).unwrap_or_default(),
                tenant_header: headers.get("Crm-Tenant-Id").map(|v| v.to_string()),
                envelope: serde_json::from_slice(&message.payload).unwrap(),
            });
        }
    }
    assert_eq!(out.len(), pending, "fetched every stored message of {subject}");
    out
}

/// Asserts the stream holds exactly `ids` on `subject`, each once, with its id as `Nats-Msg-Id`.
pub async fn assert_stored_once(js: &jetstream::Context, subject: &str, tenant: &TenantId, ids: &[String]) {
    let stored = stored_on(js, subject).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in &stored {
        assert_eq!(s.msg_id, s.envelope.id, "Nats-Msg-Id is the event id");
        assert_eq!(s.tenant_header.as_deref(), Some(tenant.to_string().as_str()));
        assert_eq!(s.envelope.tenant_id, tenant.to_string());
        *counts.entry(s.envelope.id.as_str()).or_default() += 1;
    }
    let expected: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(counts.keys().copied().collect::<HashSet<_>>(), expected, "the stored events are exactly the enqueued ones");
    assert!(counts.values().all(|&c| c == 1), "each event stored once: {counts:?}");
}

/// A running relay limited to `schemas` (other tests' relays run in parallel on the same
/// database); stopped when dropped.
pub struct RunningRelay {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningRelay {
    pub fn start(pool: &Pool, js: &jetstream::Context, config: RelayConfig) -> Self {
        let relay = OutboxRelay::with_nats(pool.clone(), js.clone(), config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay.run(async move {
            let _ = stopped.await;
        }));
        Self { stop: Some(stop), task: Some(task) }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.expect("relay stops on shutdown").unwrap();
        }
    }
}

impl Drop for RunningRelay {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn relay_config(tenants: &[&TenantId]) -> RelayConfig {
    RelayConfig {
        only_schemas: Some(tenants.iter().map(|t| t.schema().as_str().to_owned()).collect()),
        ..RelayConfig::default()
    }
}
