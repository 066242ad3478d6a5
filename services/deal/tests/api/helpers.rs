//! Test app: deal-service's router served on a free port over the test database and the
//! local NATS, its event consumers running (applying only this app's tenants' events), with
//! mock contact and auth clients (counting their calls), reached through
//! `crm_testing::TestClient` (`app.get(..)`, `app.post(..)`, ..). The tests with the real
//! services running are in `real_services.rs`.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;


use crm_client_auth::{MockAuthClient, UserBasicInfo};
use crm_events::Envelope;
use crm_client_contact::{CompanyDetails, ContactDetails, ContactStatus, MockContactClient};
use crm_tenant::TenantId;
use crm_testing::{TestClient, TestPlatform, TestTenants, start_consumers};
use crm_web::Role;
use deal_service::{AppState, Lookups, SERVICE};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub use crm_testing::{bad_fields, error_code};

pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The user id every tenant's admin token carries.
pub const ADMIN: i32 = 1;

/// deal-service under test; derefs to its [`TestClient`].
pub struct TestApp {
    pub client: TestClient,
    pub platform: TestPlatform,
    pub contacts: Arc<MockContactClient>,
    pub users: Arc<MockAuthClient>,
    /// Tenants whose events this app's consumers apply (others belong to parallel tests).
    tenants: TestTenants,
    /// The consumers (their durables expire 2 minutes after the test).
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Deref for TestApp {
    type Target = TestClient;
    fn deref(&self) -> &TestClient {
        &self.client
    }
}

/// A provisioned tenant (its outbox relayed) and an admin token.
pub struct Tenant {
    pub id: TenantId,
    pub admin: String,
}

pub async fn spawn_app() -> TestApp {
    let platform = TestPlatform::start().await;
    let contacts = Arc::new(MockContactClient::default());
    let users = Arc::new(MockAuthClient::default());
    let lookups = Lookups { contacts: contacts.clone(), users: users.clone(), timeout: Duration::from_millis(500) };
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        lookups: Arc::new(lookups),
    };
    let tenants = TestTenants::default();
    let prefix = format!("test-deal-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let tasks = start_consumers(&platform, &tenants, deal_service::consumers::consumers(&prefix), true).await;
    let url = platform.serve(SERVICE, deal_service::router(state)).await;
    let app = TestApp { client: TestClient::new(url), platform, contacts, users, tenants, tasks };
    app.add_user(ADMIN, "Ada", "Admin");
    app
}

pub fn company(id: i32, name: &str) -> CompanyDetails {
    let now = chrono::Utc::now();
    CompanyDetails {
        id,
        name: name.into(),
        domain: String::new(),
        industry: String::new(),
        size_category: String::new(),
        parent_company_id: None,
        address: Default::default(),
        phone: String::new(),
        website: String::new(),
        custom_fields: Default::default(),
        tags: vec![],
        created_at: now,
        created_by: 1,
        updated_at: now,
    }
}

pub fn contact(id: i32, first: &str, last: &str) -> ContactDetails {
    let now = chrono::Utc::now();
    ContactDetails {
        id,
        first_name: first.into(),
        last_name: last.into(),
        email: format!("{}@example.com", first.to_lowercase()),
        phone: String::new(),
        job_title: String::new(),
        company_id: None,
        company_name: None,
        owner_id: None,
        owner_name: None,
        status: ContactStatus::Lead,
        source: String::new(),
        address: Default::default(),
        custom_fields: Default::default(),
        notes: String::new(),
        tags: vec![],
        marketing_consent: Default::default(),
        last_contacted_at: None,
        score: 0,
        created_at: now,
        created_by: 1,
        updated_at: now,
    }
}

impl TestApp {
    pub async fn tenant(&self) -> Tenant {
        let id = self.platform.provision_tenant().await;
        self.tenants.watch(&id);
        let admin = self.platform.token(&id, ADMIN, Role::Admin);
        Tenant { id, admin }
    }

    pub fn token(&self, tenant: &Tenant, user_id: i32, role: Role) -> String {
        self.platform.token(&tenant.id, user_id, role)
    }

    pub fn add_user(&self, id: i32, first: &str, last: &str) {
        let user = UserBasicInfo {
            id,
            email: format!("user{id}@example.com"),
            first_name: first.into(),
            last_name: last.into(),
            role: "sales_rep".into(),
        };
        self.users.users.lock().unwrap().insert(id, user);
    }

    pub fn add_company(&self, id: i32, name: &str) {
        self.contacts.companies.lock().unwrap().insert(id, company(id, name));
    }

    pub fn add_contact(&self, id: i32, first: &str, last: &str) {
        self.contacts.contacts.lock().unwrap().insert(id, contact(id, first, last));
    }

    pub fn contact_calls(&self) -> usize {
        self.contacts.calls()
    }

    pub fn user_calls(&self) -> usize {
        *self.users.calls.lock().unwrap()
    }

    /// Creates a deal (201 expected) and returns it.
    pub async fn create_deal(&self, bearer: &str, body: Value) -> Value {
        let r = self.post("/api/v1/deals", bearer, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    pub async fn deal(&self, bearer: &str, title: &str) -> i64 {
        self.create_deal(bearer, json!({ "title": title })).await["id"].as_i64().expect("id")
    }
}

pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

impl TestApp {
    /// Publishes `event` to the stream as the relay would (message id = event id).
    pub async fn publish(&self, event: &Envelope) {
        let payload = serde_json::to_vec(event).expect("serialize the event");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        headers.insert(crm_events::TENANT_HEADER, event.tenant_id.as_str());
        self.platform
            .jetstream
            .publish_with_headers(event.r#type.clone(), headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }

    /// A request with extra headers (If-Match, Host).
    pub async fn send_with(&self, method: reqwest::Method, path: &str, bearer: &str, headers: &[(&str, &str)], body: Option<Value>) -> crm_testing::Response {
        let mut req = self.client.builder(method, path, Some(bearer));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.client.send(req).await
    }
}
