//! A service's surroundings for its API tests: the shared pieces `crm_runtime::Platform`
//! builds in production, made from the test database and the local NATS, plus helpers to
//! serve a router on a free port, mint tokens and watch published events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::DeliverPolicy};
use axum::Router;
use crm_database::Pool;
use crm_events::{Envelope, OutboxRelay, RelayConfig, ensure_stream};
use crm_tenant::{TenantDb, TenantId, TenantRegistry};
use crm_web::{TenantHosts, 
    AuthState, Claims, CorsConfig, CursorCodec, GuardChain, JwtKeys, RevocationConfig, RevocationGuard, Role, Secret, TenantStatusGuard,
    TokenType,
};
use futures::StreamExt;

pub const TEST_JWT_SECRET: &str = "crm-test-jwt-secret-not-for-production-0123456789";
pub const TEST_ISSUER: &str = "crm";
/// `BASE_DOMAIN` of [`TestPlatform`]: tenant addresses in tests are `<subdomain>.crm.localhost`
/// (a two-label base, unlike the production default `localhost`, so tests that build hosts by
/// hand keep one meaning whatever the default is).
pub const TEST_BASE_DOMAIN: &str = "crm.localhost";
pub const TEST_OPERATOR_TOKEN: &str = "crm-test-platform-admin-token";

pub fn nats_url() -> String {
    std::env::var("NATS_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "nats://127.0.0.1:4222".into())
}

pub struct TestPlatform {
    pub pool: Pool,
    pub db: TenantDb,
    pub auth: AuthState,
    pub keys: Arc<JwtKeys>,
    pub registry: Arc<TenantRegistry>,
    /// The token revocation guard, wired as in production (poller + `user.*` wake-ups).
    pub revocations: Arc<RevocationGuard>,
    pub cursors: Arc<CursorCodec>,
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    /// Outbox relays and the revocation poller and subscription, stopped on drop.
    relays: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for TestPlatform {
    fn drop(&mut self) {
        for relay in self.relays.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            relay.abort();
        }
    }
}

impl TestPlatform {
    /// Test database, NATS, the `CRM` stream and an outbox relay for the `platform` schema.
    ///
    /// Tenant schemas are relayed only once watched ([`Self::watch_tenant`],
    /// [`Self::provision_tenant`]): tests of other crates run in parallel on the same
    /// database, and some of them stop NATS on purpose for their own tenants.
    pub async fn start() -> Self {
        let pool = crate::test_pool().await;
        let db = TenantDb::new(pool.clone());
        let registry = Arc::new(TenantRegistry::new(db.clone(), Duration::from_secs(30)));
        let keys = JwtKeys::new(TEST_JWT_SECRET.as_bytes(), TEST_ISSUER);
        let revocations = Arc::new(RevocationGuard::new(RevocationConfig::default()));
        revocations.sync(&db).await.expect("load the token revocation state");
        let guards = GuardChain(vec![Arc::new(TenantStatusGuard::new(registry.clone())), revocations.clone()]);
        let hosts = TenantHosts { base_domain: TEST_BASE_DOMAIN.to_owned(), registry: registry.clone() };
        let auth = AuthState::new(keys)
            .with_guard(Arc::new(guards))
            .with_platform_token(Some(Secret::new(TEST_OPERATOR_TOKEN)))
            .with_hosts(hosts);
        let keys = auth.keys.clone();
        let nats = async_nats::connect(nats_url()).await.expect("NATS at NATS_URL (scripts/deps.sh starts it)");
        let poller = revocations.spawn(db.clone());
        let wakeups = crm_runtime::subscribe_revocation_wakeups(&nats, revocations.clone()).await.expect("subscribe to user.*");
        let jetstream = jetstream::new(nats.clone());
        ensure_stream(&jetstream).await.expect("create the CRM stream");
        let platform = Self {
            pool,
            db,
            auth,
            keys,
            registry,
            revocations,
            cursors: Arc::new(CursorCodec::new(b"test-cursor-key")),
            nats,
            jetstream,
            relays: std::sync::Mutex::new(vec![poller, wakeups]),
        };
        platform.relay(crm_database::ident::PLATFORM_SCHEMA);
        platform
    }

    fn relay(&self, schema: &str) {
        let listen = crate::test_db_config().url.parse().expect("test database URL");
        let config = RelayConfig {
            sweep_interval: Duration::from_millis(500),
            only_schemas: Some([schema.to_owned()].into()),
            ..RelayConfig::default()
        };
        let relay = OutboxRelay::new(self.pool.clone(), listen, self.jetstream.clone(), config);
        self.relays.lock().unwrap_or_else(|e| e.into_inner()).push(tokio::spawn(relay.run(std::future::pending())));
    }

    /// Publishes the outbox of `tenant` from now on (for tenants created through an API).
    pub fn watch_tenant(&self, tenant: &TenantId) {
        self.relay(tenant.schema().as_str());
    }

    /// A new tenant (registry row + schema), with its outbox relayed.
    pub async fn provision_tenant(&self) -> TenantId {
        let tenant = crate::provision_tenant(&self.pool).await;
        self.watch_tenant(&tenant);
        tenant
    }

    /// Serves `api` with the production layers on 127.0.0.1:<free port>; returns the base URL.
    pub async fn serve(&self, service: &'static str, api: Router) -> String {
        let router = crm_web::finish_router(api, service, CorsConfig::parse("").expect("empty CORS list"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(crm_web::serve(router, listener, std::future::pending()));
        format!("http://{addr}")
    }

    /// An access token for a user of `tenant`.
    pub fn token(&self, tenant: &TenantId, user_id: i32, role: Role) -> String {
        let claims = Claims::new(TokenType::Access, user_id, *tenant, format!("user{user_id}@example.com"), role, TEST_ISSUER, Duration::from_secs(3600));
        self.keys.issue(&claims).expect("sign a test token")
    }

    /// Starts watching published events (create it before the action that publishes).
    pub async fn events(&self, subject: &str) -> EventProbe {
        EventProbe::start(&self.jetstream, subject).await
    }
}

/// Reads the `CRM` stream from (shortly before) now on `subject`, for assertions on what a
/// service published.
pub struct EventProbe {
    messages: jetstream::consumer::pull::Ordered,
    seen: Vec<Envelope>,
}

impl EventProbe {
    pub async fn start(js: &jetstream::Context, subject: &str) -> Self {
        let stream = js.get_stream(crm_events::STREAM_NAME).await.expect("the CRM stream");
        let start_time = time::OffsetDateTime::now_utc() - time::Duration::seconds(2);
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: subject.to_owned(),
                deliver_policy: DeliverPolicy::ByStartTime { start_time },
                ..Default::default()
            })
            .await
            .expect("ordered consumer");
        Self { messages: consumer.messages().await.expect("message stream"), seen: Vec::new() }
    }

    /// Every event of `event_type` for `tenant` seen until `timeout`, waiting for at least one.
    pub async fn wait_for(&mut self, tenant: &TenantId, event_type: &str, timeout: Duration) -> Envelope {
        let deadline = Instant::now() + timeout;
        loop {
            let tenant_str = tenant.to_string();
            if let Some(found) = self.seen.iter().find(|e| e.tenant_id == tenant_str && e.r#type == event_type) {
                return found.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("no {event_type} event for tenant {tenant} within {timeout:?}");
            }
            if let Ok(Some(Ok(message))) = tokio::time::timeout(left, self.messages.next()).await
                && let Ok(event) = serde_json::from_slice::<Envelope>(&message.payload)
            {
                self.seen.push(event);
            }
        }
    }

    /// How many events of `event_type` for `tenant` arrive within `window` (for "exactly once").
    pub async fn count_within(&mut self, tenant: &TenantId, event_type: &str, window: Duration) -> usize {
        let deadline = Instant::now() + window;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match tokio::time::timeout(left, self.messages.next()).await {
                Ok(Some(Ok(message))) => {
                    if let Ok(event) = serde_json::from_slice::<Envelope>(&message.payload) {
                        self.seen.push(event);
                    }
                }
                _ => break,
            }
        }
        let tenant_str = tenant.to_string();
        self.seen.iter().filter(|e| e.tenant_id == tenant_str && e.r#type == event_type).count()
    }
}
