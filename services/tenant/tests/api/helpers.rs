use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crm_client_auth::MockAuthClient;
use crm_tenant::TenantId;
use crm_testing::{TEST_OPERATOR_TOKEN, TestClient, TestPlatform};
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_service::{AppState, SERVICE, Settings};

pub use crm_testing::{Response, error_code};

pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// tenant-service on a free port, with the shared test client (`url`, `http` through
/// `Deref`); the request helpers below take an optional bearer.
pub struct TestApp {
    pub client: TestClient,
    pub platform: TestPlatform,
    pub state: AppState,
    /// auth-service as tenant-service sees it (members by email, failures).
    pub users: Arc<MockAuthClient>,
}

impl Deref for TestApp {
    type Target = TestClient;
    fn deref(&self) -> &TestClient {
        &self.client
    }
}

/// A signed-up tenant: its id, subdomain and the admin invitation token.
pub struct Tenant {
    pub id: TenantId,
    pub subdomain: String,
    pub invitation_token: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Settings::default()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let platform = TestPlatform::start().await;
    let users = Arc::new(MockAuthClient::default());
    let state = AppState::new(platform.db.clone(), platform.auth.clone(), platform.registry.clone(), platform.cursors.clone(), settings)
        .with_users(users.clone());
    let url = platform.serve(SERVICE, tenant_service::router(state.clone())).await;
    TestApp { client: TestClient::new(url), platform, state, users }
}

pub fn unique_subdomain() -> String {
    format!("t{}", ulid::Ulid::generate().to_string().to_ascii_lowercase())
}

impl TestApp {
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        self.client.request(Method::GET, path, bearer, None).await
    }

    pub async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Response {
        self.client.request(Method::POST, path, bearer, Some(body)).await
    }

    pub async fn patch(&self, path: &str, bearer: Option<&str>, body: Value) -> Response {
        self.client.request(Method::PATCH, path, bearer, Some(body)).await
    }

    pub async fn delete(&self, path: &str, bearer: Option<&str>) -> Response {
        self.client.request(Method::DELETE, path, bearer, None).await
    }

    /// Signs up a tenant as the platform operator (no per-IP limit in the way of parallel tests).
    pub async fn signup(&self) -> Tenant {
        let subdomain = unique_subdomain();
        let r = self
            .post(
                "/api/v1/tenants",
                Some(TEST_OPERATOR_TOKEN),
                json!({"name": "Acme Inc", "subdomain": subdomain, "admin_email": "Owner@Acme.example"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        Tenant {
            id: TenantId::parse(r.body["tenant"]["id"].as_str().expect("tenant id")).expect("ULID"),
            subdomain,
            invitation_token: r.body["invitation"]["token"].as_str().expect("token").to_owned(),
        }
    }

    pub fn token(&self, tenant: &TenantId, role: Role) -> String {
        self.platform.token(tenant, 1, role)
    }

    pub async fn schema_tables(&self, tenant: &TenantId) -> Vec<String> {
        let client = self.platform.pool.get().await.expect("connection");
        client
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
                &[&tenant.schema().as_str()],
            )
            .await
            .expect("tables")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}
