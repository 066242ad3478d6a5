use std::sync::Arc;
use std::time::Duration;

use contact_service::{AppState, ContactConfig, SERVICE};
use crm_client_auth::{MockAuthClient, UserBasicInfo};
use crm_tenant::TenantId;
use crm_testing::TestPlatform;
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// User ids of the mock auth-service (the same in every tenant).
pub const ADMIN: i32 = 1;
pub const MANAGER: i32 = 2;
pub const REP: i32 = 3;
pub const OTHER_REP: i32 = 4;
pub const VIEWER: i32 = 5;

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub platform: TestPlatform,
    pub users: Arc<MockAuthClient>,
}

pub struct Response {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

/// A fresh tenant with a token per role.
pub struct Tenant {
    pub id: TenantId,
    pub admin: String,
    pub manager: String,
    pub rep: String,
    pub other_rep: String,
    pub viewer: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ContactConfig::default()).await
}

pub async fn spawn_app_with(config: ContactConfig) -> TestApp {
    let platform = TestPlatform::start().await;
    let mut users = MockAuthClient::default();
    for (id, first, role) in [(ADMIN, "Ada", "admin"), (MANAGER, "Max", "manager"), (REP, "Rita", "sales_rep"), (OTHER_REP, "Otto", "sales_rep"), (VIEWER, "Vic", "viewer")] {
        users = users.with_user(UserBasicInfo { id, email: format!("user{id}@example.com"), first_name: first.into(), last_name: "User".into(), role: role.into() });
    }
    let users = Arc::new(users);
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        users: users.clone(),
        config: Arc::new(config),
    };
    let url = platform.serve(SERVICE, contact_service::router(state)).await;
    TestApp { url, http: reqwest::Client::new(), platform, users }
}

impl TestApp {
    pub async fn tenant(&self) -> Tenant {
        let id = self.platform.provision_tenant().await;
        Tenant {
            admin: self.platform.token(&id, ADMIN, Role::Admin),
            manager: self.platform.token(&id, MANAGER, Role::Manager),
            rep: self.platform.token(&id, REP, Role::SalesRep),
            other_rep: self.platform.token(&id, OTHER_REP, Role::SalesRep),
            viewer: self.platform.token(&id, VIEWER, Role::Viewer),
            id,
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Response {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response { status, body, text }
    }

    pub async fn request(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Response {
        let mut req = self.http.request(method, format!("{}{}", self.url, path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Uploads a CSV body to the import endpoint.
    pub async fn import(&self, token: &str, query: &str, body: impl Into<reqwest::Body>) -> Response {
        let req = self
            .http
            .post(format!("{}/api/v1/contacts/import{query}", self.url))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(body);
        self.send(req).await
    }

    pub async fn create_company(&self, token: &str, name: &str) -> Value {
        let r = self.post("/api/v1/companies", token, json!({"name": name})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    pub async fn create_contact(&self, token: &str, body: Value) -> Value {
        let r = self.post("/api/v1/contacts", token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    /// Rows of a table of the tenant, read directly.
    pub async fn count(&self, tenant: &TenantId, table: &str) -> i64 {
        let client = self.platform.pool.get().await.expect("connection");
        let sql = format!("SELECT count(*) FROM {}.{table}", tenant.schema().as_str());
        client.query_one(&sql, &[]).await.expect("count").get(0)
    }

    pub fn auth_calls(&self) -> usize {
        *self.users.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Asserts the stable error shape and returns its code.
pub fn error_code(r: &Response) -> &str {
    assert!(r.body["error"].is_string(), "error shape: {} {}", r.status, r.text);
    assert!(r.body["request_id"].is_string(), "error shape: {}", r.text);
    r.body["code"].as_str().expect("code")
}

/// The field names of a 400 `VALIDATION_FAILED`.
pub fn bad_fields(r: &Response) -> Vec<String> {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(error_code(r), "VALIDATION_FAILED");
    r.body["details"]["fields"].as_object().expect("fields").keys().cloned().collect()
}

pub fn ids(page: &Value) -> Vec<i64> {
    page["data"].as_array().expect("data").iter().map(|c| c["id"].as_i64().expect("id")).collect()
}
