//! Test app: the real tenant-service and auth-service routers served on free ports in this
//! process (real HTTP between them), over the test database and the local NATS. Requests go
//! through `crm_testing::TestClient`.

use std::sync::Arc;
use std::time::Duration;

use auth_service::{AppState, Settings};
use crm_client_auth::{
    AuthClient, CallContext, ClientConfig as AuthClientConfig, ClientError, HttpAuthClient, LoginResponse, UserBasicInfo, UserDetails,
};
use crm_client_tenant::{ClientConfig, HttpTenantClient};
use crm_tenant::TenantId;
use crm_testing::{TEST_OPERATOR_TOKEN, TestClient, TestPlatform};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";
pub const BASE_DOMAIN: &str = "crm.localhost";

pub struct TestApp {
    pub platform: TestPlatform,
    /// auth-service.
    pub api: TestClient,
    /// tenant-service.
    pub tenant_api: TestClient,
    pub http: reqwest::Client,
}

/// A tenant signed up through tenant-service, with its first admin registered.
pub struct Tenant {
    pub id: TenantId,
    pub subdomain: String,
    pub admin: Session,
}

/// A registered user and their tokens.
#[derive(Clone)]
pub struct Session {
    pub email: String,
    pub password: String,
    pub tokens: LoginResponse,
}

impl Session {
    pub fn access(&self) -> &str {
        &self.tokens.token.access_token
    }

    pub fn refresh(&self) -> &str {
        &self.tokens.token.refresh_token
    }

    pub fn id(&self) -> i32 {
        self.tokens.user.id
    }
}

pub fn test_settings() -> Settings {
    Settings { bcrypt_cost: 4, hash_concurrency: 2, base_domain: BASE_DOMAIN.to_owned(), ..Settings::default() }
}

/// auth-service as tenant-service reaches it, once its address is known (tenant-service
/// is served first: auth-service needs its address too). Until then: unavailable.
#[derive(Default)]
pub struct LateAuthClient(std::sync::OnceLock<HttpAuthClient>);

impl LateAuthClient {
    pub fn point_at(&self, url: &str) {
        let _ = self.0.set(HttpAuthClient::new(AuthClientConfig::new(url)));
    }

    fn client(&self) -> Result<&HttpAuthClient, ClientError> {
        self.0.get().ok_or_else(|| ClientError::Unavailable("auth-service not served yet".into()))
    }
}

#[async_trait::async_trait]
impl AuthClient for LateAuthClient {
    async fn user_basic(&self, ctx: &CallContext, id: i32) -> Result<UserBasicInfo, ClientError> {
        self.client()?.user_basic(ctx, id).await
    }

    async fn users_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<UserBasicInfo>, ClientError> {
        self.client()?.users_basic(ctx, ids).await
    }

    async fn user_by_email(&self, ctx: &CallContext, email: &str) -> Result<UserDetails, ClientError> {
        self.client()?.user_by_email(ctx, email).await
    }
}

/// The state of a real tenant-service on `platform` (default settings), asking `users`
/// about members.
pub fn tenant_state_with(platform: &TestPlatform, users: Arc<dyn AuthClient>) -> tenant_service::AppState {
    tenant_service::AppState::new(
        platform.db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        tenant_service::Settings::default(),
    )
    .with_users(users)
}

/// The state of a real tenant-service on `platform` that reaches no auth-service (it
/// answers 503 to invitations): for reading with tokens.
pub fn tenant_state(platform: &TestPlatform) -> tenant_service::AppState {
    tenant_state_with(platform, Arc::new(LateAuthClient::default()))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let platform = TestPlatform::start().await;
    let users = Arc::new(LateAuthClient::default());
    let tenant_state = tenant_state_with(&platform, users.clone());
    let tenant_url = platform.serve("tenant-service", tenant_service::router(tenant_state)).await;
    let state = AppState::new(
        platform.db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        settings,
        Arc::new(HttpTenantClient::new(ClientConfig::new(tenant_url.clone()))),
    );
    let auth_url = platform.serve("auth-service", auth_service::router(state)).await;
    users.point_at(&auth_url);
    let api = TestClient::new(auth_url);
    let tenant_api = TestClient::new(tenant_url);
    let http = api.http.clone();
    TestApp { platform, api, tenant_api, http }
}

/// Status and body of a response, as the tests compare them.
fn parts(resp: crm_testing::Response) -> (StatusCode, Value) {
    (resp.status, resp.body)
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", ulid::Ulid::generate().to_string().to_ascii_lowercase())
}

impl TestApp {
    /// A request to auth-service, for anything the shortcuts below do not cover.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        self.api.builder(method, path, token)
    }

    /// Sends a built request (to any service) and reads status and body.
    pub async fn send(&self, req: RequestBuilder) -> (StatusCode, Value) {
        parts(self.api.send(req).await)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        parts(self.api.get(path, token).await)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        parts(self.api.request(Method::POST, path, token, Some(body)).await)
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        parts(self.api.patch(path, token, body).await)
    }

    /// Signs up a tenant (as the platform operator: no signup throttle) and returns its id,
    /// subdomain and the admin invitation token. Its outbox is relayed from now on.
    pub async fn signup(&self) -> (TenantId, String, String) {
        let subdomain = unique("t");
        let subdomain = subdomain[..subdomain.len().min(30)].to_owned();
        let (status, body) = parts(
            self.tenant_api
                .post("/api/v1/tenants", TEST_OPERATOR_TOKEN, json!({"name": "Acme", "subdomain": subdomain, "admin_email": format!("admin@{subdomain}.io")}))
                .await,
        );
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = TenantId::parse(body["tenant"]["id"].as_str().expect("tenant id")).expect("ulid");
        self.platform.watch_tenant(&id);
        (id, subdomain, body["invitation"]["token"].as_str().expect("invitation token").to_owned())
    }

    pub async fn register(&self, invitation_token: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/register",
            None,
            json!({"invitation_token": invitation_token, "password": password, "first_name": "Ann", "last_name": "Lee"}),
        )
        .await
    }

    /// A new tenant with its admin registered.
    pub async fn tenant(&self) -> Tenant {
        let (id, subdomain, token) = self.signup().await;
        let (status, body) = self.register(&token, PASSWORD).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let tokens: LoginResponse = serde_json::from_value(body).expect("login response");
        Tenant { id, subdomain: subdomain.clone(), admin: Session { email: format!("admin@{subdomain}.io"), password: PASSWORD.into(), tokens } }
    }

    /// An invitation for `email` with `role`, made by the tenant's admin.
    pub async fn invite(&self, tenant: &Tenant, email: &str, role: &str) -> String {
        let path = format!("/api/v1/tenants/{}/invitations", tenant.id);
        let (status, body) = parts(self.tenant_api.post(&path, tenant.admin.access(), json!({"email": email, "role": role})).await);
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// A registered user of `tenant` with `role`.
    pub async fn user(&self, tenant: &Tenant, role: &str) -> Session {
        let email = format!("{}@{}.io", unique("u"), tenant.subdomain);
        let token = self.invite(tenant, &email, role).await;
        let (status, body) = self.register(&token, PASSWORD).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Session { email, password: PASSWORD.into(), tokens: serde_json::from_value(body).expect("login response") }
    }

    pub async fn login(&self, tenant: &Tenant, email: &str, password: &str) -> (StatusCode, Value) {
        self.post("/api/v1/auth/login", None, json!({"email": email, "password": password, "tenant": tenant.subdomain})).await
    }
}

/// Waits at most `timeout` for `GET path` with `token` to answer `status`; returns how long it took.
pub async fn until_status(app: &TestApp, path: &str, token: &str, status: StatusCode, timeout: Duration) -> Duration {
    let started = std::time::Instant::now();
    crm_testing::wait_until(&format!("{path} to answer {status}"), timeout, || async {
        (app.get(path, token).await.0 == status).then_some(())
    })
    .await;
    started.elapsed()
}
