//! Measures the event path "deal closed -> activity visible" on the local Postgres
//! (`crm_test`) and NATS, with communication-service's real `deal.closed_won` consumer:
//!
//! `cargo run --release -p crm-communication-service --example closure_bench [closures]`
//!
//! 1. latency: `closures` deals closed one after another, each as deal-service does it (the
//!    `deal.closed_won` event written to the tenant's outbox in the closing transaction),
//!    then relay -> JetStream -> durable consumer -> activity + task committed. Measured from
//!    the commit of the closing transaction until a separate connection sees the activity.
//! 2. throughput, end to end: `closures` closures committed in transactions of 100 while
//!    relay and consumer run; time until the last activity is visible.
//! 3. consumer throughput: `closures` events already in JetStream, consumer started
//!    afterwards; time until all are applied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::{AckPolicy, DeliverPolicy, pull}};
use chrono::NaiveDate;
use communication_service::tracking::Tracker;
use communication_service::{AppState, Clients, Settings, consumers};
use crm_client_auth::MockAuthClient;
use crm_client_contact::MockContactClient;
use crm_client_deal::subjects::DEAL_CLOSED_WON;
use crm_client_deal::{DealBasicInfo, DealClosedEvent, MockDealClient};
use crm_events::{ConsumerSpec, Envelope, EventHandler, OutboxRelay, RelayConfig, enqueue, ensure_stream, run_consumer};
use crm_tenant::{TenantDb, TenantId, TenantRegistry};
use crm_web::{AuthState, CursorCodec, JwtKeys};

const SECRET: &str = "closure-bench-secret-0123456789-0123456789";

/// Baseline: the same consumer plumbing (claim in processed_events, commit, ack) with a
/// handler that does nothing.
struct Noop;

impl EventHandler for Noop {
    fn handle<'a>(&'a self, _tx: &'a crm_tenant::TenantTx, _event: &'a Envelope) -> futures::future::BoxFuture<'a, Result<(), crm_events::HandlerError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A durable consumer on `subject` seeing only events published from now on.
async fn precreate(js: &jetstream::Context, spec: &ConsumerSpec) {
    let stream = js.get_stream(crm_events::STREAM_NAME).await.expect("stream");
    stream
        .create_consumer(pull::Config {
            durable_name: Some(spec.durable_name.clone()),
            filter_subject: spec.filter_subject.clone(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::New,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .expect("consumer");
}

/// Sequential closures through outbox + relay; per event, commit -> `visible` true.
async fn latencies(
    db: &TenantDb,
    reader: &deadpool_postgres::Object,
    tenant: &TenantId,
    n: usize,
    make: impl Fn(usize) -> Envelope,
    visible: &str,
) -> Vec<Duration> {
    let visible = reader.prepare(visible).await.expect("prepare");
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let event = make(i);
        let tx = db.tenant(tenant).await.expect("tx");
        enqueue(&tx, &event).await.expect("enqueue");
        tx.commit().await.expect("commit");
        let committed = Instant::now();
        while !reader.query_one(&visible, &[&event.id]).await.expect("poll").get::<_, bool>(0) {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        out.push(committed.elapsed());
    }
    out.sort();
    out
}

async fn publish_backlog(js: &jetstream::Context, events: impl Iterator<Item = Envelope>) {
    let mut acks = Vec::new();
    for event in events {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        acks.push(js.publish_with_headers(event.r#type.clone(), headers, serde_json::to_vec(&event).expect("json").into()).await.expect("publish"));
        if acks.len() == 500 {
            for ack in acks.drain(..) {
                ack.await.expect("ack");
            }
        }
    }
    for ack in acks {
        ack.await.expect("ack");
    }
}

async fn count(client: &deadpool_postgres::Object, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect("count").get(0)
}

async fn wait_for(client: &deadpool_postgres::Object, sql: &str, n: i64) {
    while count(client, sql).await < n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn closed_won(tenant: &TenantId, deal_id: i32) -> Envelope {
    let data = DealClosedEvent {
        deal: DealBasicInfo { id: deal_id, title: format!("Deal {deal_id}"), stage: "closed_won".into(), value: 1000.0 },
        owner_id: Some(1),
        company_id: Some(2),
        primary_contact_id: Some(3),
        actual_close_date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default(),
        close_reason: None,
    };
    Envelope::new(DEAL_CLOSED_WON, tenant, Some("1".into()), data).expect("envelope")
}

/// The deal.closed_won consumer of communication-service, on a fresh durable consumer.
async fn start_consumer(js: &jetstream::Context, state: &AppState) -> (ConsumerSpec, Arc<dyn EventHandler>) {
    let prefix = format!("bench-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let (spec, handler) = consumers(state, &prefix).into_iter().find(|(s, _)| s.filter_subject == DEAL_CLOSED_WON).expect("the consumer");
    precreate(js, &spec).await;
    (spec, handler)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn report(what: &str, sorted: &[Duration]) {
    println!(
        "{what}: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(sorted, 0.50),
        pct(sorted, 0.95),
        pct(sorted, 0.99),
        pct(sorted, 1.0)
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).map(|a| a.parse().expect("a number")).unwrap_or(1000);
    let pool = crm_testing::test_pool().await;
    let db = TenantDb::new(pool.clone());
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let js = jetstream::new(async_nats::connect(url).await.expect("NATS"));
    ensure_stream(&js).await.expect("stream");
    let settings = Settings { sink_dir: std::env::temp_dir().join("closure-bench-mail"), ..Settings::default() };
    let state = AppState {
        db: db.clone(),
        auth: AuthState::new(JwtKeys::new(SECRET.as_bytes(), "crm")),
        registry: Arc::new(TenantRegistry::new(db.clone(), Duration::from_secs(30))),
        cursors: Arc::new(CursorCodec::new(SECRET.as_bytes())),
        clients: Clients { auth: Arc::new(MockAuthClient::default()), contacts: Arc::new(MockContactClient::default()), deals: Arc::new(MockDealClient::default()) },
        tracker: Arc::new(Tracker::new(SECRET.as_bytes(), &settings.public_base_url)),
        tenants: Arc::new(crm_client_tenant::MockTenantClient::default()),
        automation: Arc::new(communication_service::service::scheduler::Automation::default()),
        mailer: settings.mailer(),
        webhook_runtime: Arc::new(communication_service::webhook_delivery::WebhookRuntime::new(&settings.webhooks)),
        settings: Arc::new(settings),
    };
    let reader = pool.get().await.expect("db");
    let tenant = crm_testing::provision_tenant(&pool).await;
    let schema = tenant.schema().quoted();
    let listen: tokio_postgres::Config = crm_testing::test_db_config().url.parse().expect("url");
    let relay_config = RelayConfig { only_schemas: Some([tenant.schema().as_str().to_owned()].into()), ..RelayConfig::default() };
    tokio::spawn(OutboxRelay::new(pool.clone(), listen, js.clone(), relay_config).run(std::future::pending()));

    // The real consumer and, as the baseline, a no-op consumer on a subject of its own.
    let (spec, handler) = start_consumer(&js, &state).await;
    tokio::spawn(run_consumer(pool.clone(), js.clone(), spec, handler, std::future::pending()));
    let noop_subject = format!("deal.bench_noop_{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let noop = ConsumerSpec::new(format!("bench-noop-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase()), noop_subject.clone());
    let noop_name = noop.durable_name.clone();
    precreate(&js, &noop).await;
    tokio::spawn(run_consumer(pool.clone(), js.clone(), noop, Arc::new(Noop), std::future::pending()));

    // Warm-up (connections, prepared statements, subscriptions).
    let activity_visible = format!("SELECT EXISTS (SELECT 1 FROM {schema}.activities WHERE source_event_id = $1)");
    let noop_visible = format!("SELECT EXISTS (SELECT 1 FROM {schema}.processed_events WHERE consumer = '{noop_name}' AND event_id = $1)");
    latencies(&db, &reader, &tenant, 20, |i| closed_won(&tenant, -1 - i as i32), &activity_visible).await;
    let noop_event = |_: usize| Envelope::new(noop_subject.clone(), &tenant, None, serde_json::json!({"pad": "x".repeat(200)})).expect("envelope");
    latencies(&db, &reader, &tenant, 20, noop_event, &noop_visible).await;

    // 1. Latency, sequential closures.
    let real = latencies(&db, &reader, &tenant, n, |i| closed_won(&tenant, i as i32 + 1), &activity_visible).await;
    let base = latencies(&db, &reader, &tenant, n, noop_event, &noop_visible).await;
    report(&format!("deal closed (commit) -> activity visible, {n} sequential closures"), &real);
    report(&format!("baseline, no-op handler on the same path, {n} sequential events"), &base);
    println!("ratio p50 {:.2}, p99 {:.2}", pct(&real, 0.5) / pct(&base, 0.5), pct(&real, 0.99) / pct(&base, 0.99));

    // 2. End to end throughput: closures committed in batches of 100.
    let count_sql = format!("SELECT count(*) FROM {schema}.activities");
    let before = count(&reader, &count_sql).await;
    let started = Instant::now();
    for chunk in 0..n.div_ceil(100) {
        let tx = db.tenant(&tenant).await.expect("tx");
        for i in 0..100.min(n - chunk * 100) {
            enqueue(&tx, &closed_won(&tenant, 100_000 + (chunk * 100 + i) as i32)).await.expect("enqueue");
        }
        tx.commit().await.expect("commit");
    }
    wait_for(&reader, &count_sql, before + n as i64).await;
    let total = started.elapsed();
    println!(
        "end to end (outbox -> relay -> JetStream -> consumer), {n} closures committed in batches of 100: {:.0} ms, {:.0} events/s",
        total.as_secs_f64() * 1e3,
        n as f64 / total.as_secs_f64()
    );

    // 3. Consumer alone on a backlog already in JetStream (real handler, then no-op).
    let backlog = crm_testing::provision_tenant(&pool).await;
    let schema = backlog.schema().quoted();
    let (spec, handler) = start_consumer(&js, &state).await;
    publish_backlog(&js, (0..n).map(|i| closed_won(&backlog, i as i32 + 1))).await;
    let started = Instant::now();
    tokio::spawn(run_consumer(pool.clone(), js.clone(), spec, handler, std::future::pending()));
    wait_for(&reader, &format!("SELECT count(*) FROM {schema}.activities"), n as i64).await;
    let real = n as f64 / started.elapsed().as_secs_f64();
    let subject = format!("deal.bench_noop_{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let noop = ConsumerSpec::new(format!("bench-noop-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase()), subject.clone());
    let name = noop.durable_name.clone();
    precreate(&js, &noop).await;
    publish_backlog(&js, (0..n).map(|_| Envelope::new(subject.clone(), &backlog, None, serde_json::json!({"pad": "x".repeat(200)})).expect("envelope"))).await;
    let started = Instant::now();
    tokio::spawn(run_consumer(pool.clone(), js.clone(), noop, Arc::new(Noop), std::future::pending()));
    wait_for(&reader, &format!("SELECT count(*) FROM {schema}.processed_events WHERE consumer = '{name}'"), n as i64).await;
    let base = n as f64 / started.elapsed().as_secs_f64();
    println!("consumer alone on a backlog of {n}: {real:.0} events/s (activity + task + activity.logged per event); no-op baseline {base:.0} events/s; ratio {:.2}", real / base);
}
