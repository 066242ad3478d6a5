//! communication-service with the real auth-, contact- and deal-service running in this
//! process on their own ports, reached over HTTP through the production clients: the seed's
//! deal-closure flow end to end (PATCH a deal to `closed_won` on deal-service -> outbox ->
//! relay -> JetStream -> our consumer -> activity and follow-up task), with real names.

use std::sync::Arc;
use std::time::Duration;

use communication_service::Clients;
use crm_client_auth::HttpAuthClient;
use crm_client_contact::HttpContactClient;
use crm_client_core::ClientConfig;
use crm_client_deal::HttpDealClient;
use crm_client_deal::subjects::DEAL_CLOSED_WON;
use crm_client_tenant::MockTenantClient;
use crm_events::Envelope;
use crm_testing::{TestPlatform, wait_until};
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

struct Services {
    /// Hosts the three services (same database, NATS and JWT keys as the app's).
    _platform: TestPlatform,
    _auth: String,
    contact: String,
    deal: String,
}

async fn spawn_real() -> (TestApp, Services) {
    let platform = TestPlatform::start().await;
    let auth_state = auth_service::AppState::new(
        platform.db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        auth_service::Settings { bcrypt_cost: 4, ..auth_service::Settings::default() },
        Arc::new(MockTenantClient::default()),
    );
    let auth = platform.serve(auth_service::SERVICE, auth_service::router(auth_state)).await;
    let client = |url: &str| ClientConfig { timeout: Duration::from_secs(2), ..ClientConfig::new(url) };
    let contact_state = contact_service::AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        users: Arc::new(HttpAuthClient::new(client(&auth))),
        settings: Arc::new(contact_service::Settings::default()),
    };
    let contact = platform.serve(contact_service::SERVICE, contact_service::router(contact_state)).await;
    let lookups = deal_service::Lookups {
        contacts: Arc::new(HttpContactClient::new(client(&contact))),
        users: Arc::new(HttpAuthClient::new(client(&auth))),
        timeout: Duration::from_secs(2),
    };
    let deal_state = deal_service::AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        lookups: Arc::new(lookups),
    };
    let deal = platform.serve(deal_service::SERVICE, deal_service::router(deal_state)).await;
    let clients = Clients {
        auth: Arc::new(HttpAuthClient::new(client(&auth))),
        contacts: Arc::new(HttpContactClient::new(client(&contact))),
        deals: Arc::new(HttpDealClient::new(client(&deal))),
    };
    let app = spawn_app_with(Options { clients: Some(clients), ..Options::default() }).await;
    (app, Services { _platform: platform, _auth: auth, contact, deal })
}

impl Services {
    async fn call(&self, app: &TestApp, method: Method, url: String, token: &str, body: Option<Value>) -> Response {
        // `url` is absolute (another service's): a client with no base URL of its own.
        TestClient { url: String::new(), http: app.http.clone() }.request(method, &url, Some(token), body).await
    }

    async fn create(&self, app: &TestApp, base: &str, path: &str, token: &str, body: Value) -> Value {
        let r = self.call(app, Method::POST, format!("{base}{path}"), token, Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.body);
        r.body
    }
}

/// A tenant whose auth-service table holds users 1 (admin "Owner No1") and 2 (sales rep
/// "Owner No2").
async fn tenant_with_users(app: &TestApp) -> Tenant {
    let t = app.tenant().await;
    let client = app.platform.pool.get().await.expect("connection");
    for (i, role) in [(1, "admin"), (2, "sales_rep")] {
        let sql = format!(
            "INSERT INTO {}.users (email, password_hash, first_name, last_name, role, status) VALUES ($1, 'x', 'Owner', $2, $3, 'active')",
            t.id.schema().quoted()
        );
        client.execute(&sql, &[&format!("user{i}@example.com"), &format!("No{i}"), &role]).await.expect("insert user");
    }
    t
}

#[tokio::test]
async fn closing_a_deal_on_deal_service_logs_the_activity_and_task_once() {
    let (app, services) = spawn_real().await;
    let t = tenant_with_users(&app).await;
    let company = services.create(&app, &services.contact, "/api/v1/companies", &t.admin, json!({"name": "Initech"})).await;
    let contact = services
        .create(&app, &services.contact, "/api/v1/contacts", &t.admin,
            json!({"first_name": "Peter", "last_name": "Gibbons", "email": "peter@initech.example", "company_id": company["id"]}))
        .await;
    let deal_body = |title: &str| json!({"title": title, "value": 4200.5, "company_id": company["id"], "primary_contact_id": contact["id"], "owner_id": 2});
    let deal = services.create(&app, &services.deal, "/api/v1/deals", &t.admin, deal_body("TPS reports")).await;

    let closed = services
        .call(&app, Method::PATCH, format!("{}/api/v1/deals/{}", services.deal, deal["id"]), &t.admin, Some(json!({"stage": "closed_won"})))
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    let path = format!("/api/v1/activities?deal_id={}", deal["id"]);
    let activity = wait_until("the deal-closed activity", WAIT, || async {
        let r = app.get(&path, &t.admin).await;
        r.body["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await;
    assert_eq!(activity["subject"], "Deal closed won: TPS reports");
    assert_eq!(activity["contact_id"], contact["id"]);
    assert_eq!(activity["company_id"], company["id"]);
    assert_eq!(activity["owner_id"], 2);
    // Names from the real services, with the caller's token.
    assert_eq!(activity["contact_name"], "Peter Gibbons");
    assert_eq!(activity["company_name"], "Initech");
    assert_eq!(activity["deal_title"], "TPS reports");
    assert_eq!(activity["owner_name"], "Owner No2");

    let rep = app.token(&t, 2, Role::SalesRep);
    let tasks = wait_until("the follow-up task", WAIT, || async {
        let r = app.get("/api/v1/tasks/mine", &rep).await;
        (r.body["pagination"]["total_count"] == 1).then_some(r.body)
    })
    .await;
    assert_eq!(tasks["data"][0]["title"], "Follow up on won deal: TPS reports");
    assert_eq!(tasks["data"][0]["deal_id"], deal["id"]);

    // Redeliver the very event deal-service published (read back from its outbox) under a
    // new message id, then close a second deal: once that one is visible, the redelivery
    // was handled, and it created nothing.
    let client = app.platform.pool.get().await.expect("connection");
    let sql = format!("SELECT payload FROM {}.outbox WHERE subject = '{DEAL_CLOSED_WON}'", t.id.schema().quoted());
    let payload: Value = client.query_one(&sql, &[]).await.expect("the published event").get(0);
    let event: Envelope = serde_json::from_value(payload).expect("envelope");
    assert!(!app.publish(&event, &format!("{}-redelivered", event.id)).await);
    let second = services.create(&app, &services.deal, "/api/v1/deals", &t.admin, deal_body("Second")).await;
    services
        .call(&app, Method::PATCH, format!("{}/api/v1/deals/{}", services.deal, second["id"]), &t.admin, Some(json!({"stage": "closed_won"})))
        .await;
    wait_until("the second deal's task", WAIT, || async {
        (app.count(&t.id, "tasks", &format!("deal_id = {}", second["id"])).await == 1).then_some(())
    })
    .await;
    assert_eq!(app.count(&t.id, "activities", &format!("deal_id = {}", deal["id"])).await, 1);
    assert_eq!(app.count(&t.id, "tasks", &format!("deal_id = {}", deal["id"])).await, 1);
}

#[tokio::test]
async fn emails_and_timeline_with_real_contacts() {
    let (app, services) = spawn_real().await;
    let t = tenant_with_users(&app).await;
    let contact = services
        .create(&app, &services.contact, "/api/v1/contacts", &t.admin, json!({"first_name": "Ada", "last_name": "King", "email": "ada.king@example.com"}))
        .await;
    let template = app
        .post("/api/v1/email-templates", &t.admin, json!({"name": "Hi", "subject": "Hello {{contact.first_name}}", "body_html": "<p>From {{user.full_name}}</p>"}))
        .await;
    let sent = app.post("/api/v1/emails", &t.admin, json!({"contact_id": contact["id"], "template_id": template.body["id"]})).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    assert_eq!(sent.body["activity"]["contact_name"], "Ada King");
    let mail = app.smtp.wait_for("ada.king@example.com", "Hello Ada").await;
    assert!(mail.decoded().contains("From Owner No1"), "sender from auth-service: {}", mail.decoded());

    let timeline = app.get(&format!("/api/v1/contacts/{}/timeline", contact["id"]), &t.admin).await;
    assert_eq!(timeline.body["data"][0]["kind"], "email");
    assert_eq!(timeline.body["data"][0]["owner_name"], "Owner No1");
    // Another tenant's token: contact-service does not know the contact there.
    let other = app.tenant().await;
    assert_eq!(app.get(&format!("/api/v1/contacts/{}/timeline", contact["id"]), &other.admin).await.status, StatusCode::NOT_FOUND);
    let unknown = app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "x", "contact_id": 999_999})).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unknown.body);
}
