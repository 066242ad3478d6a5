use std::time::Duration;

use crm_tenant::TenantId;
use crm_testing::{TEST_OPERATOR_TOKEN, TestPlatform};
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_service::{AppState, SERVICE, TenantConfig};

pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub platform: TestPlatform,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// A signed-up tenant: its id, subdomain and the admin invitation token.
pub struct Tenant {
    pub id: TenantId,
    pub subdomain: String,
    pub invitation_token: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TenantConfig::default()).await
}

pub async fn spawn_app_with(config: TenantConfig) -> TestApp {
    let platform = TestPlatform::start().await;
    let state = AppState::new(platform.db.clone(), platform.auth.clone(), platform.registry.clone(), platform.cursors.clone(), config);
    let url = platform.serve(SERVICE, tenant_service::router(state)).await;
    TestApp { url, http: reqwest::Client::new(), platform }
}

pub fn unique_subdomain() -> String {
    format!("t{}", ulid::Ulid::generate().to_string().to_ascii_lowercase())
}

impl TestApp {
    pub async fn request(&self, method: Method, path: &str, bearer: Option<&str>, body: Option<Value>) -> Response {
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Response { status, headers, body }
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        self.request(Method::GET, path, bearer, None).await
    }

    pub async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, bearer, Some(body)).await
    }

    pub async fn patch(&self, path: &str, bearer: Option<&str>, body: Value) -> Response {
        self.request(Method::PATCH, path, bearer, Some(body)).await
    }

    pub async fn delete(&self, path: &str, bearer: Option<&str>) -> Response {
        self.request(Method::DELETE, path, bearer, None).await
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

/// Asserts the stable error shape and returns its code.
pub fn error_code(r: &Response) -> &str {
    assert!(r.body["error"].is_string(), "error shape: {}", r.body);
    assert!(r.body["request_id"].is_string(), "error shape: {}", r.body);
    r.body["code"].as_str().expect("code")
}
