//! Test support shared by every crate's integration tests.
//!
//! Tests run against the real PostgreSQL named by `DATABASE_URL` (the test script points it
//! at `crm_test`); each test isolates its data in tenants of its own, so tests run in
//! parallel, in any order, and in separate processes (nextest).

pub mod consumers;
mod database;
pub mod http;
mod platform;
mod servers;

pub use consumers::{TestTenants, start_consumers};
pub use http::{Response, TestClient, bad_fields, error_code};
pub use database::{TestDatabase, create_database, with_database};
pub use servers::{NatsServer, PostgresServer, free_port, tail, temp_dir, unique_suffix};
pub use platform::{EventProbe, TEST_BASE_DOMAIN, TEST_ISSUER, TEST_JWT_SECRET, TEST_OPERATOR_TOKEN, TestPlatform, nats_url};

use std::future::Future;
use std::time::{Duration, Instant};

use crm_database::{DbConfig, Pool, create_pool, migrate};
use crm_tenant::{TenantDb, TenantId};
use tokio::sync::OnceCell;

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/crm_test";

/// Test database settings: `DATABASE_URL`, else the local `crm_test`.
pub fn test_db_config() -> DbConfig {
    let mut config = DbConfig::from_env().unwrap_or_default();
    if std::env::var("DATABASE_URL").map(|v| v.is_empty()).unwrap_or(true) {
        config.url = DEFAULT_TEST_DATABASE_URL.to_owned();
    }
    config.acquire_timeout = Duration::from_secs(30);
    config.with_application_name("crm-tests")
}

static PLATFORM_READY: OnceCell<()> = OnceCell::const_new();

/// A fresh pool on the test database, with the `platform` schema migrated.
///
/// A pool per test: pooled connections are driven by tasks of the runtime that opened
/// them, and every `#[tokio::test]` has its own runtime.
pub async fn test_pool() -> Pool {
    test_pool_with(test_db_config()).await
}

pub async fn test_pool_with(config: DbConfig) -> Pool {
    let pool = create_pool(&config).expect("valid test database config");
    PLATFORM_READY
        .get_or_init(|| async {
            migrate::migrate_platform(&pool).await.expect("migrate the platform schema of the test database");
        })
        .await;
    pool
}

/// Creates a tenant the way tenant-service does at its core: registry row, schema and
/// every tenant migration set, in one transaction. Returns its id.
pub async fn provision_tenant(pool: &Pool) -> TenantId {
    let id = TenantId::new();
    let schema = id.schema();
    let subdomain = format!("t-{}", id.to_string().to_ascii_lowercase());
    let mut client = pool.get().await.expect("test database connection");
    let tx = client.transaction().await.expect("begin");
    tx.execute(
        "INSERT INTO platform.tenants (id, name, subdomain, schema_name) VALUES ($1, $2, $3, $4)",
        &[&id.to_string(), &format!("Test tenant {id}"), &subdomain, &schema.as_str()],
    )
    .await
    .expect("insert tenant row");
    migrate::provision_schema(tx.client(), schema.as_str()).await.expect("provision tenant schema");
    tx.commit().await.expect("commit provisioning");
    id
}

/// Request-code view of the test database.
pub async fn test_tenant_db() -> (Pool, TenantDb) {
    let pool = test_pool().await;
    (pool.clone(), TenantDb::new(pool))
}

/// Polls `condition` until it returns `Some`, or panics after `timeout` naming `what`.
/// Tests wait on conditions, never for fixed times.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(5);
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(100));
    }
}
