//! deal-service with the real contact-service and auth-service running in this process,
//! each on its own port, reached over HTTP through the production clients. Every request
//! the two services receive is counted by a middleware layer in front of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use crm_client_auth::HttpAuthClient;
use crm_client_contact::HttpContactClient;
use crm_client_core::ClientConfig;
use crm_client_deal::subjects;
use crm_client_tenant::MockTenantClient;
use crm_tenant::TenantId;
use crm_testing::{TestClient, TestPlatform};
use crm_web::{CorsConfig, Role};
use deal_service::{AppState, Lookups, SERVICE};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A service served on a free port, counting the requests it receives; stopped on demand.
struct Served {
    url: String,
    requests: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(name: &'static str, api: Router) -> Self {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let counted = api.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(req)
        }));
        let router = crm_web::finish_router(counted, name, CorsConfig::parse("").expect("empty CORS list"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crm_web::serve(router, listener, async move {
            let _ = stopped.await;
        }));
        Self { url, requests, stop: Some(stop), task }
    }

    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Graceful shutdown: the listener closes and idle keep-alive connections are dropped.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }
}

struct RealApp {
    platform: TestPlatform,
    deal: TestClient,
    auth: Served,
    contact: Served,
}

async fn spawn_real() -> RealApp {
    let platform = TestPlatform::start().await;
    let db = platform.db.clone();
    spawn_real_on(platform, db).await
}

/// The three services on `db`: one pool shared by all, as in `crm serve`.
async fn spawn_real_on(platform: TestPlatform, db: crm_tenant::TenantDb) -> RealApp {
    let auth_state = auth_service::AppState::new(
        db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        auth_service::Settings { bcrypt_cost: 4, ..auth_service::Settings::default() },
        Arc::new(MockTenantClient::default()),
    );
    let auth = Served::start(auth_service::SERVICE, auth_service::router(auth_state)).await;
    let contact_state = contact_service::AppState {
        db: db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        users: Arc::new(HttpAuthClient::new(ClientConfig::new(&auth.url))),
        settings: Arc::new(contact_service::Settings::default()),
    };
    let contact = Served::start(contact_service::SERVICE, contact_service::router(contact_state)).await;
    let timeout = Duration::from_secs(1);
    let client = |url: &str| ClientConfig { timeout, ..ClientConfig::new(url) };
    let lookups = Lookups {
        contacts: Arc::new(HttpContactClient::new(client(&contact.url))),
        users: Arc::new(HttpAuthClient::new(client(&auth.url))),
        timeout,
    };
    let state = AppState { db, auth: platform.auth.clone(), cursors: platform.cursors.clone(), lookups: Arc::new(lookups) };
    let deal_url = platform.serve(SERVICE, deal_service::router(state)).await;
    RealApp { platform, deal: TestClient::new(deal_url), auth, contact }
}

impl RealApp {
    /// A tenant whose users 1..=n exist in auth-service's table (user 1 is the admin).
    async fn tenant_with_users(&self, n: i32) -> (TenantId, String) {
        let tenant = self.platform.provision_tenant().await;
        let client = self.platform.pool.get().await.expect("connection");
        let schema = tenant.schema();
        for i in 1..=n {
            let role = if i == 1 { "admin" } else { "sales_rep" };
            let sql = format!(
                "INSERT INTO \"{}\".users (email, password_hash, first_name, last_name, role, status) VALUES ($1, 'x', $2, $3, $4, 'active')",
                schema.as_str()
            );
            client.execute(&sql, &[&format!("user{i}@example.com"), &"Owner", &format!("No{i}"), &role]).await.expect("insert user");
        }
        let admin = self.platform.token(&tenant, 1, Role::Admin);
        (tenant, admin)
    }

    async fn contact_service(&self, path: &str, token: &str, body: Value) -> i64 {
        let r = TestClient::new(&self.contact.url).post(path, token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "contact-service {path}: {}", r.body);
        r.body["id"].as_i64().expect("id")
    }

    async fn deals(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let r = self.deal.request(method, &format!("/api/v1/deals{path}"), Some(token), body).await;
        (r.status, r.body)
    }

    /// Whether contact-service answers contacts and companies in one request
    /// (`GET /contacts/basic?ids=..&company_ids=..`).
    async fn contact_service_combines(&self, token: &str, contact: i64, company: i64) -> bool {
        let path = format!("/api/v1/contacts/basic?ids={contact}&company_ids={company}");
        let r = TestClient::new(&self.contact.url).get(&path, token).await;
        r.body.get("companies").is_some()
    }
}

#[tokio::test]
async fn real_names_with_one_request_per_service_and_degraded_when_contact_service_stops() {
    let app = spawn_real().await;
    let (_tenant, admin) = app.tenant_with_users(10).await;
    let mut companies = Vec::new();
    let mut contacts = Vec::new();
    for i in 0..25 {
        let company = app.contact_service("/api/v1/companies", &admin, json!({"name": format!("Company {i}")})).await;
        let contact = app
            .contact_service("/api/v1/contacts", &admin, json!({"first_name": "Person", "last_name": format!("{i}"), "company_id": company}))
            .await;
        companies.push(company);
        contacts.push(contact);
    }
    for i in 0..50usize {
        let body = json!({"title": format!("Deal {i:02}"), "value": 10 + i, "company_id": companies[i % 25],
                          "primary_contact_id": contacts[(i + 3) % 25], "owner_id": (i % 10) + 1});
        let (status, body) = app.deals(reqwest::Method::POST, "", &admin, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["company_name"], format!("Company {}", i % 25));
    }
    // References are checked against the real services.
    let (status, body) = app.deals(reqwest::Method::POST, "", &admin, Some(json!({"title": "x", "company_id": 999_999, "owner_id": 4242}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["details"]["fields"]["company_id"].is_string() && body["details"]["fields"]["owner_id"].is_string(), "{body}");

    assert!(app.contact_service_combines(&admin, contacts[0], companies[0]).await, "contacts+companies in one lookup");
    let (auth_before, contact_before) = (app.auth.count(), app.contact.count());
    let (status, page) = app.deals(reqwest::Method::GET, "?limit=50&sort=title", &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (auth_calls, contact_calls) = (app.auth.count() - auth_before, app.contact.count() - contact_before);
    assert_eq!(auth_calls, 1, "one request to auth-service for a page of 50");
    assert_eq!(contact_calls, 1, "one request to contact-service for a page of 50");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 50);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["company_name"], format!("Company {}", i % 25), "{d}");
        assert_eq!(d["primary_contact_name"], format!("Person {}", (i + 3) % 25), "{d}");
        assert_eq!(d["owner_name"], format!("Owner No{}", (i % 10) + 1), "{d}");
    }

    // contact-service stops: deals are still listed, with null contact and company names.
    let id = data[0]["id"].clone();
    let mut app = app;
    app.contact.stop().await;
    let (status, page) = app.deals(reqwest::Method::GET, "?limit=50", &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 50);
    assert!(data.iter().all(|d| d["company_name"].is_null() && d["primary_contact_name"].is_null()), "names degrade to null");
    assert!(data.iter().all(|d| d["owner_name"].as_str().is_some_and(|n| n.starts_with("Owner"))), "auth-service still answers");
    assert!(data.iter().all(|d| d["company_id"].is_i64()));
    let (status, _) = app.deals(reqwest::Method::GET, &format!("/{id}"), &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, pipeline) = app.deals(reqwest::Method::GET, "/pipeline", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pipeline["totals"]["total_deals"], 50);
    // A write naming a company cannot be checked now: 503, nothing written.
    let (status, _) = app.deals(reqwest::Method::POST, "", &admin, Some(json!({"title": "late", "company_id": 1}))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (_, page) = app.deals(reqwest::Method::GET, "?search=late", &admin, None).await;
    assert_eq!(page["pagination"]["total_count"], 0);
}

#[tokio::test]
async fn closing_won_with_real_services_publishes_one_event_read_from_jetstream() {
    let app = spawn_real().await;
    let (tenant, admin) = app.tenant_with_users(2).await;
    let company = app.contact_service("/api/v1/companies", &admin, json!({"name": "Initech"})).await;
    let contact = app.contact_service("/api/v1/contacts", &admin, json!({"first_name": "Peter", "last_name": "Gibbons", "company_id": company})).await;
    let mut won = app.platform.events(subjects::DEAL_CLOSED_WON).await;
    let body = json!({"title": "TPS reports", "value": 4200.5, "company_id": company, "primary_contact_id": contact, "owner_id": 2});
    let (status, deal) = app.deals(reqwest::Method::POST, "", &admin, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    assert_eq!((deal["company_name"].as_str(), deal["primary_contact_name"].as_str()), (Some("Initech"), Some("Peter Gibbons")));
    assert_eq!(deal["owner_name"], "Owner No2");
    let (status, closed) = app.deals(reqwest::Method::PATCH, &format!("/{}", deal["id"]), &admin, Some(json!({"stage": "closed_won"}))).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let event = won.wait_for(&tenant, subjects::DEAL_CLOSED_WON, Duration::from_secs(10)).await;
    assert_eq!(event.data["id"], deal["id"]);
    assert_eq!(event.data["company_id"], company);
    assert_eq!(event.data["primary_contact_id"], contact);
    assert_eq!(event.data["owner_id"], 2);
    assert_eq!(event.data["value"], 4200.5);
    assert_eq!(won.count_within(&tenant, subjects::DEAL_CLOSED_WON, Duration::from_millis(1500)).await, 1, "exactly one");
}

/// Under concurrency far above the pool size, every enriched response is complete: no
/// service holds a pooled connection while it waits for another service (that starved the
/// shared pool of `crm serve` at 32 connections: names came back null, the circuit opened).
#[tokio::test]
async fn enrichment_stays_complete_with_many_more_requests_than_pooled_connections() {
    const POOL: usize = 4;
    const CONCURRENT: usize = 96;
    let platform = TestPlatform::start().await;
    let small = crm_testing::test_pool_with(crm_testing::test_db_config().with_max_connections(POOL)).await;
    let app = spawn_real_on(platform, crm_tenant::TenantDb::new(small)).await;
    let (_tenant, admin) = app.tenant_with_users(3).await;
    let company = app.contact_service("/api/v1/companies", &admin, json!({"name": "Globex"})).await;
    let contact = app
        .contact_service("/api/v1/contacts", &admin, json!({"first_name": "Ada", "last_name": "L", "company_id": company, "owner_id": 2}))
        .await;
    let (status, deal) = app
        .deals(reqwest::Method::POST, "", &admin, Some(json!({"title": "Big", "company_id": company, "primary_contact_id": contact, "owner_id": 3})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let deal_id = deal["id"].as_i64().unwrap();

    let contacts = TestClient::new(&app.contact.url);
    let requests = (0..CONCURRENT).map(|i| {
        let (contacts, deals, admin) = (contacts.clone(), app.deal.clone(), admin.clone());
        async move {
            if i % 2 == 0 {
                let r = contacts.get(&format!("/api/v1/contacts/{contact}"), &admin).await;
                (r.status, r.body["owner_name"].clone())
            } else {
                let r = deals.get(&format!("/api/v1/deals/{deal_id}"), &admin).await;
                (r.status, json!([r.body["owner_name"], r.body["company_name"], r.body["primary_contact_name"]]))
            }
        }
    });
    let results = futures::future::join_all(requests).await;
    for (i, (status, names)) in results.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "request {i}: {names}");
        if i % 2 == 0 {
            assert_eq!(names, &json!("Owner No2"), "request {i}");
        } else {
            assert_eq!(names, &json!(["Owner No3", "Globex", "Ada L"]), "request {i}");
        }
    }
}
