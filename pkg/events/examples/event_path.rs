//! Measures the event path on the local Postgres (`crm_test`) and NATS:
//! outbox -> relay -> JetStream -> durable consumer -> handler transaction.
//!
//! `cargo run --release -p crm-events --example event_path [events] [latency_samples]`
//!
//! * relay throughput: `events` enqueued in transactions of 100 while a relay runs, time until
//!   the last one is marked published;
//! * end-to-end latency, one event at a time: from the envelope's timestamp (just before the
//!   commit) to the consumer's handler running in the tenant transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use chrono::Utc;
use crm_events::{
    ConsumerSpec, Envelope, EventHandler, HandlerError, OutboxRelay, RelayConfig, enqueue, ensure_stream, run_consumer,
};
use crm_tenant::{TenantDb, TenantId, TenantTx};
use futures::future::BoxFuture;
use tokio::sync::mpsc;

struct Latency(mpsc::UnboundedSender<Duration>);

impl EventHandler for Latency {
    fn handle<'a>(&'a self, _tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let elapsed = (Utc::now() - event.timestamp).to_std().unwrap_or_default();
            let _ = self.0.send(elapsed);
            Ok(())
        })
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let events = args.next().unwrap_or(10_000);
    let samples = args.next().unwrap_or(500);

    let pool = crm_testing::test_pool().await;
    let tenant = crm_testing::provision_tenant(&pool).await;
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let js = jetstream::new(async_nats::connect(url).await.expect("NATS"));
    ensure_stream(&js).await.expect("stream");
    let listen: tokio_postgres::Config = crm_testing::test_db_config().url.parse().expect("url");
    let config = RelayConfig { only_schemas: Some([tenant.schema().as_str().to_owned()].into()), ..RelayConfig::default() };
    tokio::spawn(OutboxRelay::new(pool.clone(), listen, js.clone(), config).run(std::future::pending()));
    let db = TenantDb::new(pool.clone());

    // Relay throughput.
    let subject = format!("deal.bench{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let started = Instant::now();
    for chunk in 0..events.div_ceil(100) {
        let tx = db.tenant(&tenant).await.expect("tx");
        for n in 0..100.min(events - chunk * 100) {
            enqueue(&tx, &envelope(&tenant, &subject, n)).await.expect("enqueue");
        }
        tx.commit().await.expect("commit");
    }
    let enqueued = started.elapsed();
    let client = pool.get().await.expect("db");
    let sql = format!("SELECT count(*) FROM {}.outbox WHERE subject = $1 AND published_at IS NULL", tenant.schema().quoted());
    loop {
        let left: i64 = client.query_one(&sql, &[&subject]).await.expect("count").get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    println!(
        "relay: {events} events enqueued in {:.0} ms, all published after {:.0} ms: {:.0} events/s end to end",
        enqueued.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        events as f64 / total.as_secs_f64()
    );

    // End-to-end latency.
    let subject = format!("deal.lat{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let (sender, mut latencies) = mpsc::unbounded_channel();
    let spec = ConsumerSpec::new(format!("bench-{}", ulid::Ulid::generate()), subject.clone());
    let durable = spec.durable_name.clone();
    tokio::spawn(run_consumer(pool.clone(), js.clone(), spec, Arc::new(Latency(sender)), std::future::pending()));
    let mut got = Vec::with_capacity(samples);
    for n in 0..samples {
        let tx = db.tenant(&tenant).await.expect("tx");
        enqueue(&tx, &envelope(&tenant, &subject, n)).await.expect("enqueue");
        tx.commit().await.expect("commit");
        got.push(latencies.recv().await.expect("latency"));
    }
    got.sort();
    let pct = |p: f64| got[((got.len() as f64 * p) as usize).min(got.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "commit -> handler, {samples} sequential events: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
    let _ = js.get_stream(crm_events::STREAM_NAME).await.expect("stream").delete_consumer(&durable).await;
}

fn envelope(tenant: &TenantId, subject: &str, n: usize) -> Envelope {
    Envelope::new(subject, tenant, None, serde_json::json!({ "n": n, "pad": "x".repeat(200) })).expect("envelope")
}
