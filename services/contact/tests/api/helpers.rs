use std::sync::Arc;
use std::time::Duration;

use contact_service::{AppState, SERVICE, Settings};
use crm_client_auth::{MockAuthClient, UserBasicInfo};
use crm_tenant::TenantId;
pub use crm_testing::{Response, TestClient, bad_fields, error_code};
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

/// The service under test: the shared [`TestClient`] (`app.get(..)`, `app.post(..)`,
/// `app.send(app.builder(..))`, `app.url`, `app.http` through `Deref`), the platform and the
/// mock auth-service.
pub struct TestApp {
    pub client: TestClient,
    pub platform: TestPlatform,
    pub users: Arc<MockAuthClient>,
}

impl std::ops::Deref for TestApp {
    type Target = TestClient;
    fn deref(&self) -> &TestClient {
        &self.client
    }
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
    spawn_app_with(Settings::default()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
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
        settings: Arc::new(settings),
    };
    let url = platform.serve(SERVICE, contact_service::router(state)).await;
    TestApp { client: TestClient::new(url), platform, users }
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

    /// Uploads a CSV body to the import endpoint.
    pub async fn import(&self, token: &str, query: &str, body: impl Into<reqwest::Body>) -> Response {
        let req = self.builder(Method::POST, &format!("/api/v1/contacts/import{query}"), Some(token)).header("content-type", "text/csv").body(body);
        self.send(req).await
    }

    pub async fn create_company(&self, token: &str, name: &str) -> Value {
        self.post("/api/v1/companies", token, json!({"name": name})).await.expect(StatusCode::CREATED)
    }

    pub async fn create_contact(&self, token: &str, body: Value) -> Value {
        self.post("/api/v1/contacts", token, body).await.expect(StatusCode::CREATED)
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

pub fn ids(page: &Value) -> Vec<i64> {
    page["data"].as_array().expect("data").iter().map(|c| c["id"].as_i64().expect("id")).collect()
}
