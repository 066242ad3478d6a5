//! Webhooks for integrators (issue 15): a real HTTP receiver on 127.0.0.1 (listed in the
//! allow-list of the SSRF guard), signatures verified with the `standardwebhooks` crate (the
//! Standard Webhooks reference implementation, independent of ours), retries with a fast
//! configured back-off, redelivery, SSRF refusals at save and at delivery time, automatic
//! disabling, two instances delivering each event once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use communication_service::consumers::webhook_consumer;
use communication_service::webhook_delivery::{self, AllowList, WebhookConfig, WebhookRuntime};
use communication_service::{AppState, SERVICE};
use crm_tenant::TenantId;
use crm_testing::{TestClient, TestTenants, bad_fields, error_code, start_consumers, wait_until};
use crm_web::Role;
use serde_json::{Value, json};

use crate::helpers::{Options, REP, Tenant, TestApp, VIEWER, WAIT, spawn_app_with};

/// What the receiver got, and how it answers.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Answer 500 to the first n requests.
    fail_first: Arc<AtomicUsize>,
    /// Answer 500 to everything while set.
    failing: Arc<AtomicBool>,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Self, String) {
        let receiver = Self::default();
        receiver.fail_first.store(fail_first, Ordering::SeqCst);
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        (receiver, format!("http://{addr}/hook"))
    }

    fn hits(&self) -> Vec<(HeaderMap, String)> {
        self.hits.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> (StatusCode, &'static str) {
    let n = {
        let mut hits = r.hits.lock().unwrap();
        hits.push((headers, body));
        hits.len()
    };
    if n <= r.fail_first.load(Ordering::SeqCst) || r.failing.load(Ordering::SeqCst) {
        (StatusCode::INTERNAL_SERVER_ERROR, "receiver down")
    } else {
        (StatusCode::OK, "thanks")
    }
}

/// The tests' pace: fast back-off and polling; `allowed` is the SSRF allow-list.
fn config(allowed: &str) -> WebhookConfig {
    WebhookConfig {
        allowed: AllowList::parse(allowed).unwrap(),
        timeout: Duration::from_secs(5),
        retry_base: Duration::from_millis(50),
        retry_max_delay: Duration::from_millis(200),
        retry_window: Duration::from_secs(120),
        disable_after: Duration::from_secs(3600),
        poll_interval: Duration::from_millis(20),
        sweep_interval: Duration::from_millis(300),
        batch: 20,
        only_tenants: Some(Arc::new(Mutex::new(HashSet::new()))),
    }
}

/// The service with webhook settings `config`, its webhook consumer and delivery loop, and
/// one tenant.
struct Hooks {
    app: TestApp,
    client: TestClient,
    state: AppState,
    tenant: Tenant,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Hooks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn with_config(base: &AppState, config: WebhookConfig) -> AppState {
    let mut settings = (*base.settings).clone();
    settings.webhooks = config;
    let mut state = base.clone();
    state.webhook_runtime = Arc::new(WebhookRuntime::new(&settings.webhooks));
    state.settings = Arc::new(settings);
    state
}

async fn hooks(config: WebhookConfig) -> Hooks {
    let app = spawn_app_with(Options { scheduler: false, ..Options::default() }).await;
    let tenant = app.tenant().await;
    if let Some(only) = &config.only_tenants {
        only.lock().unwrap().insert(tenant.id);
    }
    let state = with_config(&app.state, config);
    let url = app.platform.serve(SERVICE, communication_service::router(state.clone())).await;
    let tenants = TestTenants::default();
    tenants.watch(&tenant.id);
    let prefix = format!("test-hooks-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let consumer = webhook_consumer(&state, &prefix);
    let mut tasks = start_consumers(&app.platform, &tenants, vec![consumer], false).await;
    tasks.push(tokio::spawn(webhook_delivery::run(state.clone(), std::future::pending())));
    Hooks { app, client: TestClient::new(url), state, tenant, tasks }
}

impl Hooks {
    /// Publishes an event of the tenant through its outbox (as any service does).
    async fn publish(&self, event_type: &str, data: Value) -> String {
        let tx = self.app.platform.db.tenant(&self.tenant.id).await.unwrap();
        let event = crm_events::Envelope::new(event_type, &self.tenant.id, Some(ADMIN_ACTOR.into()), data).unwrap();
        crm_events::enqueue(&tx, &event).await.unwrap();
        tx.commit().await.unwrap();
        event.id
    }

    async fn create(&self, url: &str, events: Value) -> Value {
        let body = json!({"url": url, "events": events, "description": "ERP sync"});
        self.client.post("/api/v1/webhooks", &self.tenant.admin, body).await.expect(StatusCode::CREATED)
    }

    async fn deliveries(&self, id: i64) -> Vec<Value> {
        let page = self.client.get(&format!("/api/v1/webhooks/{id}/deliveries"), &self.tenant.admin).await.expect(StatusCode::OK);
        page["data"].as_array().unwrap().clone()
    }

    /// Waits for the webhook's delivery of `event_id` to reach `status`.
    async fn wait_delivery(&self, id: i64, event_id: &str, status: &str) -> Value {
        wait_until(&format!("delivery of {event_id} {status}"), WAIT, || async {
            self.deliveries(id).await.into_iter().find(|d| d["event_id"] == event_id && d["status"] == status)
        })
        .await
    }
}

const ADMIN_ACTOR: &str = "1";

fn verify(secret: &str, headers: &HeaderMap, body: &str) {
    let wh = standardwebhooks::Webhook::new(secret).expect("a Standard Webhooks secret");
    wh.verify(body.as_bytes(), headers).unwrap_or_else(|e| panic!("signature does not verify: {e:?} {headers:?}"));
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_once_more_after_two_500s_signed_and_redeliverable() {
    let (receiver, url) = Receiver::start(2).await;
    let h = hooks(config("127.0.0.1")).await;
    let created = h.create(&url, json!(["deal.closed_won", "contact.*"])).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["status"], "active");
    assert_eq!(created["events"], json!(["deal.closed_won", "contact.*"]));

    // The secret is shown once: never in reads.
    let read = h.client.get(&format!("/api/v1/webhooks/{id}"), &h.tenant.admin).await;
    assert!(read.header("etag").is_some());
    let read = read.expect(StatusCode::OK);
    assert!(read.get("secret").is_none(), "{read}");
    let listed = h.client.get("/api/v1/webhooks", &h.tenant.admin).await.expect(StatusCode::OK);
    assert!(!listed.to_string().contains(&secret));

    let event_id = h.publish("deal.closed_won", json!({"deal_id": 7, "title": "Big deal"})).await;
    let delivered = h.wait_delivery(id, &event_id, "succeeded").await;
    assert_eq!(delivered["attempts"], 3, "{delivered}");
    assert_eq!(delivered["response_status"], 200);
    assert!(delivered["error"].is_null());
    assert!(delivered["latency_ms"].as_i64().is_some());

    // Exactly three requests: 500, 500, then the one that succeeded; nothing after.
    let hits = receiver.hits();
    assert_eq!(hits.len(), 3, "{:?}", hits.iter().map(|h| &h.1).collect::<Vec<_>>());
    for (headers, body) in &hits {
        verify(&secret, headers, body);
        assert_eq!(headers["webhook-id"], event_id.as_str(), "the same message id on every attempt");
        assert_eq!(headers["content-type"], "application/json");
        let envelope: Value = serde_json::from_str(body).unwrap();
        assert_eq!(envelope["id"], event_id.as_str());
        assert_eq!(envelope["type"], "deal.closed_won");
        assert_eq!(envelope["tenant_id"], h.tenant.id.to_string());
        assert_eq!(envelope["data"]["deal_id"], 7);
    }

    // The attempts are visible one by one.
    let detail = h.client.get(&format!("/api/v1/webhooks/{id}/deliveries/{}", delivered["id"]), &h.tenant.admin).await.expect(StatusCode::OK);
    let statuses: Vec<&Value> = detail["attempts_made"].as_array().unwrap().iter().map(|a| &a["response_status"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)], "{detail}");
    assert_eq!(detail["attempts_made"][0]["error"], "HTTP 500");
    assert_eq!(detail["attempts_made"][0]["response_excerpt"], "receiver down");
    assert_eq!(detail["payload"]["id"], event_id.as_str());

    // A matching family event is delivered, an unsubscribed type is not.
    let contact_event = h.publish("contact.created", json!({"id": 3})).await;
    h.publish("user.login", json!({"user_id": 1})).await;
    h.wait_delivery(id, &contact_event, "succeeded").await;
    let deal_event_2 = h.publish("deal.closed_won", json!({"deal_id": 8})).await;
    h.wait_delivery(id, &deal_event_2, "succeeded").await;
    let types: Vec<String> = h.deliveries(id).await.iter().map(|d| d["event_type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["deal.closed_won", "contact.created", "deal.closed_won"], "newest first; no user.login");

    // Redelivery: once more, same webhook-id, still verifiable.
    let before = receiver.hits().len();
    let path = format!("/api/v1/webhooks/{id}/deliveries/{}/redeliver", delivered["id"]);
    let again = h.client.post(&path, &h.tenant.admin, json!({})).await.expect(StatusCode::ACCEPTED);
    assert_eq!(again["status"], "pending");
    wait_until("the redelivery", WAIT, || async { (receiver.hits().len() > before).then_some(()) }).await;
    let (headers, body) = receiver.hits()[before].clone();
    assert_eq!(headers["webhook-id"], event_id.as_str());
    verify(&secret, &headers, &body);
    let redelivered = h.wait_delivery(id, &event_id, "succeeded").await;
    assert_eq!(redelivered["attempts"], 4);

    // Unknown deliveries and webhooks are 404.
    let missing = h.client.post(&format!("/api/v1/webhooks/{id}/deliveries/999999/redeliver"), &h.tenant.admin, json!({})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(h.client.get("/api/v1/webhooks/999999/deliveries", &h.tenant.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn targets_resolving_to_internal_addresses_are_refused_at_creation_and_at_delivery() {
    let h = hooks(config("")).await;
    for url in ["http://127.0.0.1:9/x", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/", "http://localhost:9/hook"] {
        let r = h.client.post("/api/v1/webhooks", &h.tenant.admin, json!({"url": url, "events": ["*"]})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {}", r.body);
        assert_eq!(error_code(&r), "WEBHOOK_TARGET_REFUSED");
        assert!(r.body["details"]["fields"]["url"].as_str().unwrap().contains("non-public"), "{}", r.body);
    }
    let r = h.client.post("/api/v1/webhooks", &h.tenant.admin, json!({"url": "ftp://example.com/x", "events": ["*"]})).await;
    assert_eq!(bad_fields(&r), ["url"]);
    let r = h.client.post("/api/v1/webhooks", &h.tenant.admin, json!({"url": "gopher://x", "events": [], "description": "x".repeat(501)})).await;
    assert_eq!(bad_fields(&r), ["description", "events", "url"], "every bad field at once");
    let r = h.client.post("/api/v1/webhooks", &h.tenant.admin, json!({"url": "https://93.184.216.34/", "events": ["deal.closed_won", "nope", "contact.*", "*.x"]})).await;
    assert_eq!(bad_fields(&r), ["events[1]", "events[3]"]);
    assert_eq!(h.client.get("/api/v1/webhooks", &h.tenant.admin).await.expect(StatusCode::OK)["data"], json!([]));

    // DNS rebinding / an allow-list narrowed later: a webhook saved while `localhost` was
    // allowed is refused by the resolver at delivery time, and the receiver gets nothing.
    let (receiver, url) = Receiver::start(0).await;
    let url = url.replace("127.0.0.1", "localhost");
    let lenient = with_config(&h.state, config("localhost"));
    let lenient_url = h.app.platform.serve(SERVICE, communication_service::router(lenient)).await;
    let created = TestClient::new(lenient_url)
        .post("/api/v1/webhooks", &h.tenant.admin, json!({"url": url, "events": ["deal.*"]}))
        .await
        .expect(StatusCode::CREATED);
    let id = created["id"].as_i64().unwrap();
    let event_id = h.publish("deal.closed_won", json!({"deal_id": 1})).await;
    let refused = wait_until("a refused attempt", WAIT, || async {
        h.deliveries(id).await.into_iter().find(|d| d["event_id"] == event_id.as_str() && d["attempts"].as_i64() >= Some(1) && !d["error"].is_null())
    })
    .await;
    assert!(refused["error"].as_str().unwrap().contains("non-public"), "{refused}");
    assert!(refused["response_status"].is_null());
    assert!(receiver.hits().is_empty());

    // Moving an existing webhook to an internal address is refused too.
    let etag = h.client.get(&format!("/api/v1/webhooks/{id}"), &h.tenant.admin).await.header("etag").unwrap().to_owned();
    let req = h.client.builder(axum::http::Method::PATCH, &format!("/api/v1/webhooks/{id}"), Some(&h.tenant.admin)).header("if-match", etag).json(&json!({"url": "http://192.168.1.1/"}));
    let r = h.client.send(req).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_disabled_with_an_event_and_its_deliveries_wait() {
    let (receiver, url) = Receiver::start(0).await;
    receiver.failing.store(true, Ordering::SeqCst);
    let mut config = config("127.0.0.1");
    config.disable_after = Duration::from_millis(300);
    let h = hooks(config).await;
    let mut disabled_events = h.app.platform.events("webhook.disabled").await;
    let id = h.create(&url, json!(["deal.*"])).await["id"].as_i64().unwrap();
    let event_id = h.publish("deal.closed_won", json!({"deal_id": 5})).await;

    let webhook = wait_until("the webhook disabled", WAIT, || async {
        let w = h.client.get(&format!("/api/v1/webhooks/{id}"), &h.tenant.admin).await.expect(StatusCode::OK);
        (w["status"] == "disabled").then_some(w)
    })
    .await;
    assert!(webhook["disabled_reason"].as_str().unwrap().contains("failing"), "{webhook}");
    assert!(webhook["failing_since"].is_string());
    let event = disabled_events.wait_for(&h.tenant.id, "webhook.disabled", WAIT).await;
    assert_eq!(event.data["webhook_id"], id);
    assert_eq!(event.data["status"], "disabled");
    assert!(event.data.get("secret").is_none());

    // The delivery is kept (waiting), not dropped; nothing is sent while disabled.
    let kept = h.deliveries(id).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["status"], "pending");
    assert!(kept[0]["attempts"].as_i64().unwrap() >= 2, "{kept:?}");
    let path = format!("/api/v1/webhooks/{id}/deliveries/{}/redeliver", kept[0]["id"]);
    let r = h.client.post(&path, &h.tenant.admin, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    // The receiver is fixed and the admin re-enables the webhook: the kept delivery goes out.
    receiver.failing.store(false, Ordering::SeqCst);
    let etag = h.client.get(&format!("/api/v1/webhooks/{id}"), &h.tenant.admin).await.header("etag").unwrap().to_owned();
    let stale = h.client.builder(axum::http::Method::PATCH, &format!("/api/v1/webhooks/{id}"), Some(&h.tenant.admin)).header("if-match", "\"stale\"").json(&json!({"enabled": true}));
    assert_eq!(h.client.send(stale).await.status, StatusCode::PRECONDITION_FAILED);
    let req = h.client.builder(axum::http::Method::PATCH, &format!("/api/v1/webhooks/{id}"), Some(&h.tenant.admin)).header("if-match", etag).json(&json!({"enabled": true}));
    let enabled = h.client.send(req).await.expect(StatusCode::OK);
    assert_eq!(enabled["status"], "active");
    assert!(enabled["failing_since"].is_null());
    h.wait_delivery(id, &event_id, "succeeded").await;
}

#[tokio::test]
async fn two_instances_deliver_each_event_exactly_once() {
    let (receiver, url) = Receiver::start(0).await;
    let h = hooks(config("127.0.0.1")).await;
    // A second instance: its own state (sender, hints) and delivery loop on the same database.
    let mut second = config("127.0.0.1");
    second.only_tenants = Some(Arc::new(Mutex::new([h.tenant.id].into_iter().collect::<HashSet<TenantId>>())));
    let other = with_config(&h.state, second);
    let loop_two = tokio::spawn(webhook_delivery::run(other, std::future::pending()));
    let id = h.create(&url, json!(["*"])).await["id"].as_i64().unwrap();
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(h.publish("contact.updated", json!({"id": n})).await);
    }
    wait_until("12 deliveries succeeded", WAIT, || async {
        let done = h.deliveries(id).await.iter().filter(|d| d["status"] == "succeeded" && d["event_type"] == "contact.updated").count();
        (done == 12).then_some(())
    })
    .await;
    loop_two.abort();
    // `*` also matches the webhook's own `webhook.created`: only the contact events count here.
    let hits: Vec<_> = receiver.hits().into_iter().filter(|(_, body)| body.contains("contact.updated")).collect();
    let seen: Vec<String> = hits.iter().map(|(headers, _)| headers["webhook-id"].to_str().unwrap().to_owned()).collect();
    assert_eq!(seen.len(), 12, "each event once: {seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 12);
    assert!(ids.iter().all(|id| seen.contains(id)));
}

#[tokio::test]
async fn webhooks_are_for_admins_and_versioned() {
    let h = hooks(config("")).await;
    let rep = h.app.platform.token(&h.tenant.id, REP, Role::SalesRep);
    let viewer = h.app.platform.token(&h.tenant.id, VIEWER, Role::Viewer);
    let manager = h.app.platform.token(&h.tenant.id, 5, Role::Manager);
    for token in [&rep, &viewer, &manager] {
        let r = h.client.get("/api/v1/webhooks", token).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        let r = h.client.post("/api/v1/webhooks", token, json!({"url": "https://93.184.216.34/", "events": ["*"]})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let created = h.create("https://93.184.216.34/hook", json!(["deal.closed_won", "deal.closed_won", "*"])).await;
    assert_eq!(created["events"], json!(["deal.closed_won", "*"]), "duplicates dropped");
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/webhooks/{id}");

    // Rotation: a new secret, shown once; the If-Match of a PATCH follows the version.
    let r = h.client.get(&path, &h.tenant.admin).await;
    let etag = r.header("etag").unwrap().to_owned();
    let rotated = h.client.post(&format!("{path}/rotate-secret"), &h.tenant.admin, json!({})).await.expect(StatusCode::OK);
    assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_ne!(rotated["secret"], created["secret"]);
    let req = h.client.builder(axum::http::Method::PATCH, &path, Some(&h.tenant.admin)).header("if-match", etag).json(&json!({"description": null}));
    assert_eq!(h.client.send(req).await.status, StatusCode::PRECONDITION_FAILED, "rotation made a new version");
    let patched = h.client.patch(&path, &h.tenant.admin, json!({"description": null, "events": ["contact.*"]})).await.expect(StatusCode::OK);
    assert!(patched["description"].is_null());
    assert_eq!(patched["events"], json!(["contact.*"]));
    let r = h.client.patch(&path, &h.tenant.admin, json!({"secret": "whsec_x"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown fields are refused: {}", r.body);

    let r = h.client.get("/api/v1/webhooks?sort=url", &h.tenant.admin).await;
    assert_eq!(bad_fields(&r), ["sort"]);
    let r = h.client.get(&format!("{path}/deliveries?status=lost"), &h.tenant.admin).await;
    assert_eq!(bad_fields(&r), ["status"]);

    assert_eq!(h.client.delete(&path, &rep).await.status, StatusCode::FORBIDDEN);
    assert_eq!(h.client.delete(&path, &h.tenant.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.client.get(&path, &h.tenant.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(h.client.get("/api/v1/webhooks/abc", &h.tenant.admin).await.status, StatusCode::NOT_FOUND);
}

/// Throughput of the whole path (outbox -> JetStream -> fan-out consumer -> queue -> signed
/// POST to a local receiver), one instance. Ignored by default; run with
/// `cargo nextest run -p crm-communication-service --run-ignored only webhook_throughput`
/// (`WEBHOOK_BENCH_EVENTS`, default 300). Prints events per second.
#[tokio::test]
#[ignore]
async fn webhook_throughput() {
    let n: usize = std::env::var("WEBHOOK_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let (receiver, url) = Receiver::start(0).await;
    let h = hooks(config("127.0.0.1")).await;
    let id = h.create(&url, json!(["contact.*"])).await["id"].as_i64().unwrap();
    let started = std::time::Instant::now();
    let tx = h.app.platform.db.tenant(&h.tenant.id).await.unwrap();
    for i in 0..n {
        let event = crm_events::Envelope::new("contact.updated", &h.tenant.id, None, json!({"id": i})).unwrap();
        crm_events::enqueue(&tx, &event).await.unwrap();
    }
    tx.commit().await.unwrap();
    wait_until("every event delivered", Duration::from_secs(300), || async { (receiver.hits().len() >= n).then_some(()) }).await;
    let elapsed = started.elapsed();
    let page = h.client.get(&format!("/api/v1/webhooks/{id}/deliveries?status=succeeded&count=true&limit=1"), &h.tenant.admin).await.expect(StatusCode::OK);
    assert_eq!(page["pagination"]["total_count"], n as i64);
    assert_eq!(receiver.hits().len(), n, "each once");
    eprintln!("webhook throughput: {n} events delivered in {elapsed:?} = {:.0} events/s", n as f64 / elapsed.as_secs_f64());
}
