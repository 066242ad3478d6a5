//! Start-up wiring shared by every service binary and the all-in-one `crm serve`: a service's
//! `main` is `Platform::start(..)`, build its router, `platform.serve(..)`.
//!
//! [`Platform::start`] reads the configuration, builds the pool, brings the platform schema
//! and every tenant schema up to date, connects to NATS (in the background: the service runs
//! while NATS is down, events wait in the outbox), starts the outbox relay, the
//! tenant-cache invalidation subscription and the token revocation guard (poller + `user.*`
//! subscription).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use crm_database::migrate::{self, FleetOptions};
use crm_database::schema::TENANT_SETS;
use crm_database::{DbConfig, Pool, create_pool};
use crm_events::{OutboxRelay, RelayConfig, ensure_stream, subscribe_invalidations};
use crm_tenant::{TenantDb, TenantRegistry};
use crm_web::admission::AdmissionConfig;
use crm_web::rate_limit::{RateLimitConfig, RateLimits};
use crm_web::{
    AuthState, CorsConfig, CursorCodec, GuardChain, JwtKeys, ReadyCheck, RevocationConfig, RevocationGuard, Secret, SystemState,
    TenantHosts, TenantStatusGuard,
};

/// `BASE_DOMAIN` when unset: `localhost`, because browsers resolve `*.localhost` to loopback
/// (RFC 6761), so `http://acme.localhost:8000` reaches tenant `acme` with no DNS set-up.
pub const DEFAULT_BASE_DOMAIN: &str = "localhost";
use futures::future::BoxFuture;
use tokio::sync::watch;

pub mod reads;
pub mod settings;
pub use settings::SettingsError;

/// A background task a service needs besides its routes (event consumers, refills):
/// returned by the service's `build`, started by whoever serves it.
pub struct Task {
    pub name: &'static str,
    pub future: BoxFuture<'static, ()>,
}

/// What a service's `build` returns: its API routes (without system routes and layers),
/// its finished OpenAPI document and its background tasks, explicitly, so building has
/// no side effects.
pub struct Built {
    pub name: &'static str,
    pub router: Router,
    pub openapi: serde_json::Value,
    pub tasks: Vec<Task>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Shared settings from the environment.
#[derive(Clone)]
pub struct PlatformConfig {
    pub db: DbConfig,
    pub nats_url: String,
    pub jwt_secret: Secret,
    pub jwt_issuer: String,
    pub platform_token: Option<Secret>,
    pub cors: CorsConfig,
    /// Where services listen (`BIND_ADDR`, default 127.0.0.1; 0.0.0.0 in containers).
    pub bind_host: String,
    /// Migrate at start (`MIGRATE_ON_START`, default true; the k8s Job runs `crm migrate`).
    pub migrate_on_start: bool,
    /// Tenants' addresses are `<subdomain>.<BASE_DOMAIN>` (default `localhost`): a token
    /// used on another tenant's address is refused (403 `TENANT_MISMATCH`) by every service.
    pub base_domain: String,
    /// `TRUST_FORWARDED_FOR` (default false): client addresses from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// The API rate limit (`RATE_LIMIT_USER_PER_MINUTE`, `RATE_LIMIT_TENANT_PER_MINUTE`,
    /// `RATE_LIMIT_TENANT_OVERRIDES`, `RATE_LIMIT_MAX_DELAY_MS`, `RATE_LIMIT_MAX_WAITING`): see
    /// [`crm_web::rate_limit`].
    pub rate_limit: RateLimitConfig,
    /// Per-tenant admission (`TENANT_MAX_IN_FLIGHT`, default half of `DB_MAX_CONNECTIONS`;
    /// `TENANT_QUEUE_TIMEOUT_MS`, `TENANT_MAX_QUEUED`): see [`crm_web::admission`].
    pub admission: AdmissionConfig,
}

impl PlatformConfig {
    pub fn from_env() -> Result<Self, StartError> {
        let db = DbConfig::from_env().map_err(|e| StartError::Config(e.to_string()))?;
        let jwt_secret = Secret::from_env("JWT_SECRET")
            .filter(|s| s.expose().len() >= 32)
            .ok_or_else(|| StartError::Config("JWT_SECRET must be set, at least 32 characters".into()))?;
        let cors = CorsConfig::from_env().map_err(|e| StartError::Config(e.to_string()))?;
        Ok(Self {
            nats_url: env_or("NATS_URL", "nats://127.0.0.1:4222"),
            jwt_secret,
            jwt_issuer: env_or("JWT_ISSUER", "crm"),
            platform_token: Secret::from_env("PLATFORM_ADMIN_TOKEN").filter(|s| !s.expose().is_empty()),
            cors,
            bind_host: env_or("BIND_ADDR", "127.0.0.1"),
            migrate_on_start: std::env::var("MIGRATE_ON_START").map(|v| v != "false" && v != "0").unwrap_or(true),
            base_domain: settings::string("BASE_DOMAIN", DEFAULT_BASE_DOMAIN).to_ascii_lowercase(),
            trust_forwarded_for: settings::flag("TRUST_FORWARDED_FOR", false).map_err(|e| StartError::Config(e.to_string()))?,
            rate_limit: rate_limit_from_env().map_err(|e| StartError::Config(e.to_string()))?,
            admission: admission_from_env(db.max_connections).map_err(|e| StartError::Config(e.to_string()))?,
            db,
        })
    }
}

fn rate_limit_from_env() -> Result<RateLimitConfig, SettingsError> {
    let defaults = RateLimitConfig::default();
    let rule = "must be a number of requests per minute (0 = no limit)";
    Ok(RateLimitConfig {
        user_per_minute: settings::number("RATE_LIMIT_USER_PER_MINUTE", defaults.user_per_minute, rule)?,
        tenant_per_minute: settings::number("RATE_LIMIT_TENANT_PER_MINUTE", defaults.tenant_per_minute, rule)?,
        tenant_overrides: RateLimitConfig::parse_overrides(&settings::string("RATE_LIMIT_TENANT_OVERRIDES", ""))
            .map_err(|e| SettingsError::new("RATE_LIMIT_TENANT_OVERRIDES", e))?,
        max_delay: settings::millis("RATE_LIMIT_MAX_DELAY_MS", defaults.max_delay.as_millis() as u64, 0)?,
        max_waiting: settings::number("RATE_LIMIT_MAX_WAITING", defaults.max_waiting, "must be a whole number of requests")?,
    })
}

/// Per-tenant admission; the defaults depend on the pool size ([`AdmissionConfig::for_pool`]).
fn admission_from_env(pool_size: usize) -> Result<AdmissionConfig, SettingsError> {
    let defaults = AdmissionConfig::for_pool(pool_size);
    Ok(AdmissionConfig {
        max_in_flight: settings::number(
            "TENANT_MAX_IN_FLIGHT",
            defaults.max_in_flight,
            "must be a whole number of requests (0 = no bound)",
        )?,
        max_wait: settings::millis("TENANT_QUEUE_TIMEOUT_MS", defaults.max_wait.as_millis() as u64, 1)?,
        max_queued: settings::number("TENANT_MAX_QUEUED", defaults.max_queued, "must be a whole number of requests")?,
    })
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// Everything a service router is built from.
#[derive(Clone)]
pub struct Platform {
    pub config: PlatformConfig,
    /// System tasks only (migrations, relay); request code gets [`Platform::db`].
    pool: Pool,
    pub db: TenantDb,
    pub auth: AuthState,
    pub registry: Arc<TenantRegistry>,
    /// Refuses tokens issued before a role change or deactivation (in `auth.guard` already).
    pub revocations: Arc<RevocationGuard>,
    pub cursors: Arc<CursorCodec>,
    /// One API rate limiter (with per-tenant admission) for every router this process serves.
    pub rate_limits: Arc<RateLimits>,
    pub nats: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    shutdown: watch::Receiver<bool>,
}

impl Platform {
    /// Starts the shared parts. `name` is used for logs and the Postgres application name.
    pub async fn start(name: &str) -> Result<Self, StartError> {
        crm_web::init_tracing(name);
        let config = PlatformConfig::from_env()?;
        let pool = create_pool(&config.db.clone().with_application_name(name)).map_err(|e| StartError::Database(e.to_string()))?;
        if config.migrate_on_start {
            migrate_with_retry(&pool).await?;
        }
        let db = read_replica(TenantDb::new(pool.clone()), &config.db.clone().with_application_name(name))?;
        let registry = Arc::new(TenantRegistry::new(db.clone(), Duration::from_secs(30)));
        let keys = JwtKeys::new(config.jwt_secret.expose().as_bytes(), config.jwt_issuer.clone());
        // Calls between services prove themselves with a key derived from the same secret.
        let internal = crm_client_core::InternalKey::derive(config.jwt_secret.expose().as_bytes());
        crm_client_core::set_internal_key(internal.clone());
        let revocations = Arc::new(RevocationGuard::new(RevocationConfig::default()));
        if let Err(e) = revocations.sync(&db).await {
            // The poller retries; until it succeeds, authenticated requests get 503.
            tracing::warn!(error = %e, "token revocation state not loaded yet");
        }
        revocations.spawn(db.clone());
        let guards = GuardChain(vec![Arc::new(TenantStatusGuard::new(registry.clone())), revocations.clone()]);
        let hosts = TenantHosts { base_domain: config.base_domain.clone(), registry: registry.clone() };
        let auth = AuthState::new(keys)
            .with_guard(Arc::new(guards))
            .with_platform_token(config.platform_token.clone())
            .with_hosts(hosts)
            .with_trust_forwarded_for(config.trust_forwarded_for);
        // Cursors are signed with a key derived from the JWT secret: one secret to manage.
        let cursors = Arc::new(CursorCodec::new(format!("cursor-key:{}", config.jwt_secret.expose()).as_bytes()));

        let nats = async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| StartError::Config(format!("NATS_URL: {e}")))?;
        let jetstream = async_nats::jetstream::new(nats.clone());
        let (shutdown_tx, shutdown) = watch::channel(false);
        tokio::spawn(async move {
            crm_web::shutdown_signal().await;
            let _ = shutdown_tx.send(true);
        });

        let rate_limits =
            Arc::new(RateLimits::new(&config.rate_limit, auth.keys.clone(), internal).with_admission(config.admission.clone()));
        let platform = Self { config, pool, db, auth, registry, revocations, cursors, rate_limits, nats, jetstream, shutdown };
        platform.spawn_event_plumbing();
        Ok(platform)
    }

    /// Resolves when the process is asked to stop (SIGTERM / Ctrl-C).
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    fn spawn_event_plumbing(&self) {
        // Stream creation waits for NATS; the relay retries publishing until then.
        let js = self.jetstream.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            while let Err(e) = ensure_stream(&js).await {
                tracing::warn!(error = %e, "JetStream stream not ready, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
        match self.config.db.url.parse::<tokio_postgres::Config>() {
            Ok(listen) => {
                let relay = OutboxRelay::new(self.pool.clone(), listen, self.jetstream.clone(), RelayConfig::default());
                tokio::spawn(relay.run(self.shutdown()));
            }
            Err(e) => tracing::error!(error = %e, "outbox relay not started: invalid DATABASE_URL"),
        }
        let (nats, registry) = (self.nats.clone(), self.registry.clone());
        tokio::spawn(async move {
            let subscribed = subscribe_invalidations(&nats, &["tenant.>"], move |event| match event.tenant() {
                Ok(id) => registry.invalidate(&id),
                Err(_) => registry.invalidate_all(),
            })
            .await;
            if let Err(e) = subscribed {
                tracing::warn!(error = %e, "tenant cache invalidation not subscribed; entries expire by TTL");
            }
        });
        let (nats, revocations) = (self.nats.clone(), self.revocations.clone());
        tokio::spawn(async move {
            if let Err(e) = subscribe_revocation_wakeups(&nats, revocations).await {
                tracing::warn!(error = %e, "user.* events not subscribed; token revocations are seen by polling only");
            }
        });
    }

    /// A durable event consumer ([`crm_events::run_consumer`]) on the platform's pool that
    /// runs until shutdown once started (consumers are system tasks: they scope their own
    /// transactions).
    pub fn consumer_task(&self, spec: crm_events::ConsumerSpec, handler: Arc<dyn crm_events::EventHandler>) -> Task {
        let name = "event consumer";
        Task { name, future: Box::pin(crm_events::run_consumer(self.pool.clone(), self.jetstream.clone(), spec, handler, self.shutdown())) }
    }

    /// Starts a service's background tasks.
    pub fn spawn_tasks(&self, tasks: Vec<Task>) {
        for task in tasks {
            tracing::debug!(task = task.name, "background task started");
            tokio::spawn(task.future);
        }
    }

    /// Serves one built service on its port (`PORT` overrides `default_port`), with its
    /// background tasks: a service binary's `main` is `Platform::start` + this.
    pub async fn run(&self, built: Built, default_port: u16) -> Result<(), StartError> {
        let Built { name, router, openapi, tasks } = built;
        self.spawn_tasks(tasks);
        let router = self.finish(name, router, openapi);
        self.serve(name, router, default_port).await
    }

    /// `/health`, `/ready`, ... state for one service.
    pub fn system_state(&self, service: &'static str, openapi: serde_json::Value) -> SystemState {
        SystemState {
            service,
            version: env!("CARGO_PKG_VERSION"),
            db: self.db.clone(),
            nats: Some(self.nats.clone()),
            ready_checks: vec![Arc::new(MigrationsCurrent { pool: self.pool.clone() })],
            openapi: Arc::new(openapi),
        }
    }

    /// Adds the system routes and the shared layers to a service's API router.
    pub fn finish(&self, service: &'static str, api: Router, openapi: serde_json::Value) -> Router {
        // Inside the rate limit: a refused request reads nothing.
        let api = match self.db.has_read_replica() {
            true => api.layer(axum::middleware::from_fn_with_state(
                reads::ReadTracking { db: self.db.clone(), keys: self.auth.keys.clone() },
                reads::track_reads,
            )),
            false => api,
        };
        let api = api.layer(axum::middleware::from_fn_with_state(self.rate_limits.clone(), crm_web::rate_limit::limit));
        let router = api.merge(crm_web::system_routes(self.system_state(service, openapi)));
        crm_web::finish_router(router, service, self.config.cors.clone())
    }

    /// Binds `host:port` (`PORT` overrides `default_port`) and serves until shutdown.
    pub async fn serve(&self, service: &'static str, router: Router, default_port: u16) -> Result<(), StartError> {
        let port = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(default_port);
        let listener = self.bind(port).await?;
        tracing::info!(service, port, "listening");
        crm_web::serve(router, listener, self.shutdown()).await.map_err(|e| StartError::Config(e.to_string()))
    }

    pub async fn bind(&self, port: u16) -> Result<tokio::net::TcpListener, StartError> {
        let addr: SocketAddr = format!("{}:{port}", self.config.bind_host)
            .parse()
            .map_err(|_| StartError::Config(format!("BIND_ADDR {:?} is not an IP address", self.config.bind_host)))?;
        tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })
    }
}

/// Adds the read pool when `DATABASE_READ_URL` is set (connections open lazily, so a replica
/// that is down does not stop the start: reads fall back to the primary until it is up).
fn read_replica(db: TenantDb, config: &DbConfig) -> Result<TenantDb, StartError> {
    let Some(read) = config.read_config() else { return Ok(db) };
    let pool = create_pool(&read).map_err(|e| StartError::Config(format!("DATABASE_READ_URL: {e}")))?;
    tracing::info!(replica = ?read, "lag-tolerant reads (lists, search, reports, exports) go to the read replica");
    Ok(db.with_read_replica(pool))
}

/// Wakes the revocation poller when auth-service reports a change that can revoke tokens, so
/// it is seen within milliseconds rather than at the next poll.
pub async fn subscribe_revocation_wakeups(
    nats: &async_nats::Client,
    revocations: Arc<RevocationGuard>,
) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
    subscribe_invalidations(nats, &["user.>"], move |event| {
        if matches!(event.r#type.as_str(), "user.updated" | "user.deactivated" | "user.password_reset" | "user.logged_out") {
            revocations.wake();
        }
    })
    .await
}

/// Postgres may still be starting (containers, CI): retry the first migration for a while
/// while the server is unreachable. A missing database or a refused user does not fix itself:
/// that fails at once, explained (error chain, host/port/database/user, a hint).
async fn migrate_with_retry(pool: &Pool) -> Result<(), StartError> {
    let config = DbConfig::from_env().unwrap_or_default();
    let mut delay = Duration::from_millis(250);
    for attempt in 1.. {
        match migrate::migrate_all(pool, TENANT_SETS, FleetOptions::default(), |_, _| {}).await {
            Ok(summary) => {
                if !summary.failed.is_empty() {
                    tracing::error!(failed = summary.failed.len(), "some tenant schemas failed to migrate; /ready reports it");
                }
                tracing::info!(
                    schemas = summary.schemas,
                    migrated = summary.migrated,
                    check_ms = summary.check_time.as_millis() as u64,
                    total_ms = summary.total_time.as_millis() as u64,
                    "migrations current"
                );
                return Ok(());
            }
            Err(e) => {
                let problem = crm_database::DbProblem::new(&config, &e);
                if attempt < 20 && problem.retryable() {
                    tracing::warn!(error = %problem.chain, attempt, "migration failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(3));
                } else {
                    return Err(StartError::Database(problem.to_string()));
                }
            }
        }
    }
    unreachable!("the loop returns")
}

/// `/ready` fails while any tenant schema is behind this build's migrations.
struct MigrationsCurrent {
    pool: Pool,
}

impl ReadyCheck for MigrationsCurrent {
    fn name(&self) -> &str {
        "migrations"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let status = migrate::fleet_status(&self.pool, TENANT_SETS).await.map_err(|e| e.to_string())?;
            match status.behind.len() {
                0 => Ok(()),
                n => Err(format!("{n} tenant schemas behind")),
            }
        })
    }
}
