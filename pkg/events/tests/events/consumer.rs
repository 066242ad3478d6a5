use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage};
use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError, STREAM_NAME, enqueue, run_consumer, subscribe_invalidations};
use crm_tenant::{TenantId, TenantTx};
use deadpool_postgres::Pool;
use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::helpers::*;

/// Records what it applied; fails the first `fail_first` deliveries of each event; may emit a
/// follow-up event in the same transaction.
#[derive(Default)]
struct Recorder {
    fail_first: usize,
    follow_up: Option<String>,
    attempts: Mutex<HashMap<String, usize>>,
    applied: Mutex<Vec<String>>,
}

impl Recorder {
    fn applied(&self) -> Vec<String> {
        self.applied.lock().unwrap().clone()
    }

    fn attempts(&self, id: &str) -> usize {
        self.attempts.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

impl EventHandler for Recorder {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let attempt = {
                let mut attempts = self.attempts.lock().unwrap();
                let n = attempts.entry(event.id.clone()).or_default();
                *n += 1;
                *n
            };
            if attempt <= self.fail_first {
                return Err(HandlerError::msg(format!("planned failure {attempt}")));
            }
            if let Some(follow_up) = &self.follow_up {
                let next = Envelope::new(follow_up.as_str(), tx.tenant_id(), None, serde_json::json!({ "cause": event.id }))?;
                enqueue(tx, &next).await?;
            }
            self.applied.lock().unwrap().push(event.id.clone());
            Ok(())
        })
    }
}

struct RunningConsumer {
    js: jetstream::Context,
    durable: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningConsumer {
    fn start(pool: &Pool, js: &jetstream::Context, spec: ConsumerSpec, handler: Arc<dyn EventHandler>) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let durable = spec.durable_name.clone();
        let task = tokio::spawn(run_consumer(pool.clone(), js.clone(), spec, handler, async move {
            let _ = stopped.await;
        }));
        Self { js: js.clone(), durable, stop: Some(stop), task }
    }

    /// Everything on the subject delivered and acked (or terminated).
    async fn wait_drained(&self) {
        wait_until(&format!("consumer {} to be drained", self.durable), WAIT, || async {
            let stream = self.js.get_stream(STREAM_NAME).await.ok()?;
            let consumer = stream.get_consumer::<pull::Config>(&self.durable).await.ok()?;
            let info = consumer.get_info().await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0 && info.delivered.stream_sequence > 0).then_some(())
        })
        .await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task).await.expect("consumer stops on shutdown").unwrap();
        let stream = self.js.get_stream(STREAM_NAME).await.unwrap();
        let _ = stream.delete_consumer(&self.durable).await;
    }
}

fn spec(subject: &str) -> ConsumerSpec {
    ConsumerSpec {
        backoff: vec![Duration::from_millis(10), Duration::from_millis(20)],
        ..ConsumerSpec::new(unique_name("test"), subject)
    }
}

async fn publish(js: &jetstream::Context, subject: &str, msg_id: &str, payload: Vec<u8>) -> u64 {
    let message = PublishMessage::build().payload(payload.into()).message_id(msg_id);
    js.send_publish(subject.to_owned(), message).await.unwrap().await.unwrap().sequence
}

async fn count(pool: &Pool, tenant: &TenantId, sql_from_where: &str, param: &str) -> i64 {
    let client = pool.get().await.unwrap();
    let sql = format!("SELECT count(*) FROM {}.{sql_from_where}", tenant.schema().quoted());
    client.query_one(&sql, &[&param]).await.unwrap().get(0)
}

/// Runs a fresh durable consumer on `subject` until `expected` events were applied and
/// nothing is left; returns the ids applied, in order (duplicates included).
pub async fn consume_all(pool: &Pool, js: &jetstream::Context, subject: &str, expected: usize) -> Vec<String> {
    let recorder = Arc::new(Recorder::default());
    let consumer = RunningConsumer::start(pool, js, spec(subject), recorder.clone());
    wait_until("every event to be applied", WAIT, || async { (recorder.applied().len() >= expected).then_some(()) }).await;
    consumer.wait_drained().await;
    consumer.stop().await;
    recorder.applied()
}

#[tokio::test]
async fn an_event_delivered_twice_is_applied_once() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("deal");
    let follow_up = unique_type("task");
    let e = event(&tenant, &subject, 0);
    let body = serde_json::to_vec(&e).unwrap();
    // Two copies past JetStream's de-duplication, as a re-publish after the window would be.
    publish(&js, &subject, &format!("{}-a", e.id), body.clone()).await;
    publish(&js, &subject, &format!("{}-b", e.id), body).await;

    let recorder = Arc::new(Recorder { follow_up: Some(follow_up.clone()), ..Recorder::default() });
    let s = spec(&subject);
    let durable = s.durable_name.clone();
    let consumer = RunningConsumer::start(&pool, &js, s, recorder.clone());
    consumer.wait_drained().await;
    consumer.stop().await;

    assert_eq!(recorder.applied(), vec![e.id.clone()]);
    assert_eq!(count(&pool, &tenant, "outbox WHERE subject = $1", &follow_up).await, 1, "the handler's writes happened once");
    let client = pool.get().await.unwrap();
    let sql = format!("SELECT count(*) FROM {}.processed_events WHERE consumer = $1 AND event_id = $2", tenant.schema().quoted());
    let processed: i64 = client.query_one(&sql, &[&durable, &e.id]).await.unwrap().get(0);
    assert_eq!(processed, 1);
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_applied_once() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("deal");
    let follow_up = unique_type("task");
    let e = event(&tenant, &subject, 0);
    publish(&js, &subject, &e.id, serde_json::to_vec(&e).unwrap()).await;

    let recorder = Arc::new(Recorder { fail_first: 2, follow_up: Some(follow_up.clone()), ..Recorder::default() });
    let consumer = RunningConsumer::start(&pool, &js, spec(&subject), recorder.clone());
    wait_until("the event to be applied", WAIT, || async { (!recorder.applied().is_empty()).then_some(()) }).await;
    consumer.wait_drained().await;
    consumer.stop().await;

    assert_eq!(recorder.attempts(&e.id), 3);
    assert_eq!(recorder.applied(), vec![e.id.clone()]);
    // The failed attempts rolled back their writes.
    assert_eq!(count(&pool, &tenant, "outbox WHERE subject = $1", &follow_up).await, 1);
    assert_eq!(count(&pool, &tenant, "dead_letters WHERE event_id = $1", &e.id).await, 0);
}

#[tokio::test]
async fn a_failing_event_is_parked_after_max_deliver() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("email");
    let e = event(&tenant, &subject, 0);
    publish(&js, &subject, &e.id, serde_json::to_vec(&e).unwrap()).await;

    let recorder = Arc::new(Recorder { fail_first: usize::MAX, ..Recorder::default() });
    let s = ConsumerSpec { max_deliver: 3, ..spec(&subject) };
    let durable = s.durable_name.clone();
    let consumer = RunningConsumer::start(&pool, &js, s, recorder.clone());
    wait_until("the event to be parked", WAIT, || async {
        (count(&pool, &tenant, "dead_letters WHERE event_id = $1", &e.id).await == 1).then_some(())
    })
    .await;
    // Terminated: nothing left pending or awaiting an ack, so no further redelivery.
    consumer.wait_drained().await;
    consumer.stop().await;

    assert_eq!(recorder.attempts(&e.id), 3);
    assert!(recorder.applied().is_empty());
    let client = pool.get().await.unwrap();
    let sql = format!(
        "SELECT consumer, subject, payload->>'id', error FROM {}.dead_letters WHERE event_id = $1",
        tenant.schema().quoted()
    );
    let row = client.query_one(&sql, &[&e.id]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), durable);
    assert_eq!(row.get::<_, String>(1), subject);
    assert_eq!(row.get::<_, String>(2), e.id);
    assert!(row.get::<_, String>(3).contains("planned failure 3"), "{}", row.get::<_, String>(3));
    assert_eq!(count(&pool, &tenant, "processed_events WHERE event_id = $1", &e.id).await, 0);
}

#[tokio::test]
async fn poison_messages_and_deleted_tenants_do_not_block_the_consumer() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("contact");
    publish(&js, &subject, &unique_name("garbage"), b"not json".to_vec()).await;
    let gone = event(&TenantId::new(), &subject, 0);
    publish(&js, &subject, &gone.id, serde_json::to_vec(&gone).unwrap()).await;
    let good = event(&tenant, &subject, 1);
    publish(&js, &subject, &good.id, serde_json::to_vec(&good).unwrap()).await;

    let recorder = Arc::new(Recorder::default());
    let consumer = RunningConsumer::start(&pool, &js, spec(&subject), recorder.clone());
    wait_until("the valid event to be applied", WAIT, || async { (!recorder.applied().is_empty()).then_some(()) }).await;
    consumer.wait_drained().await;
    consumer.stop().await;
    assert_eq!(recorder.applied(), vec![good.id]);
    assert_eq!(recorder.attempts(&gone.id), 0, "a deleted tenant's event is skipped");
}

#[tokio::test]
async fn every_instance_receives_invalidations() {
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("user");
    let tenant = TenantId::new();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let client = async_nats::connect(nats_url()).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::<Envelope>::new()));
        let sink = seen.clone();
        let task = subscribe_invalidations(&client, &[subject.as_str()], move |e| sink.lock().unwrap().push(e)).await.unwrap();
        instances.push((client, seen, task));
    }
    let e = event(&tenant, &subject, 0);
    publish(&js, &subject, &e.id, serde_json::to_vec(&e).unwrap()).await;
    for (_, seen, task) in &instances {
        wait_until("the invalidation", WAIT, || async { (!seen.lock().unwrap().is_empty()).then_some(()) }).await;
        assert_eq!(seen.lock().unwrap().as_slice(), std::slice::from_ref(&e));
        task.abort();
    }
}
