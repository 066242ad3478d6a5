//! Tenant scoping against the real database: no cross-tenant reads under concurrency on a
//! tiny pool, and no way for a session-level search path to survive a checkout.

use std::sync::Arc;

use crm_database::create_pool;
use crm_tenant::{TenantDb, TenantId};
use crm_testing::{provision_tenant, test_db_config, test_pool};
use futures::StreamExt;
use rand::Rng;

/// Writes a marker row naming the tenant into its own schema.
async fn mark(db: &TenantDb, tenant: &TenantId) {
    let tx = db.tenant(tenant).await.unwrap();
    tx.execute(
        "INSERT INTO processed_events (consumer, event_id) VALUES ('marker', $1)",
        &[&tenant.to_string()],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_scoped_transactions_never_read_another_tenant() {
    let setup = test_pool().await;
    let mut tenants = Vec::new();
    for _ in 0..12 {
        tenants.push(provision_tenant(&setup).await);
    }
    // A pool of 2 connections: every connection serves many tenants in turn.
    let db = TenantDb::new(create_pool(&test_db_config().with_max_connections(2)).unwrap());
    for t in &tenants {
        mark(&db, t).await;
    }
    let tenants = Arc::new(tenants);
    let checked = futures::stream::iter(0..3000)
        .map(|i| {
            let db = db.clone();
            let tenants = tenants.clone();
            async move {
                let tenant = tenants[rand::rng().random_range(0..tenants.len())];
                let tx = db.tenant(&tenant).await.unwrap();
                let row = tx
                    .query_one(
                        "SELECT current_schema()::text, (SELECT string_agg(event_id, ',') FROM processed_events WHERE consumer = 'marker')",
                        &[],
                    )
                    .await
                    .unwrap();
                let (schema, seen): (String, String) = (row.get(0), row.get(1));
                assert_eq!(schema, tenant.schema().as_str(), "request {i}");
                assert_eq!(seen, tenant.to_string(), "request {i} saw another tenant's rows");
                // Half commit, half roll back: both must leave the connection clean.
                if i % 2 == 0 { tx.commit().await.unwrap() } else { tx.rollback().await.unwrap() }
            }
        })
        .buffer_unordered(32)
        .count()
        .await;
    assert_eq!(checked, 3000);
}

#[tokio::test]
async fn a_session_level_search_path_does_not_survive_the_checkout() {
    let pool = create_pool(&test_db_config().with_max_connections(1)).unwrap();
    let setup = test_pool().await;
    let a = provision_tenant(&setup).await;
    let b = provision_tenant(&setup).await;
    let db = TenantDb::new(pool.clone());

    // Request code cannot reach a bare connection (see the compile_fail doc tests on
    // TenantDb and Scoped), and a scoped transaction refuses SQL touching the search path.
    {
        let tx = db.tenant(&a).await.unwrap();
        let sql = format!("SET search_path = {}", a.schema().quoted());
        assert!(matches!(tx.execute(sql.as_str(), &[]).await, Err(crm_tenant::DbError::Refused(_))));
        assert!(matches!(tx.prepare_cached("set SEARCH_PATH to public").await, Err(crm_tenant::DbError::Refused(_))));
        tx.commit().await.unwrap();
    }
    // Even a session-level SET that got through (system code on a raw pooled connection)
    // does not survive the checkout.
    {
        let client = pool.get().await.unwrap();
        client.batch_execute(&format!("SET search_path = {}", a.schema().quoted())).await.unwrap();
    }
    // The next scoped transaction on the same (only) connection is scoped to its own tenant...
    {
        let tx = db.tenant(&b).await.unwrap();
        let schema: String = tx.query_one("SELECT current_schema()::text", &[]).await.unwrap().get(0);
        assert_eq!(schema, b.schema().as_str());
        tx.commit().await.unwrap();
    }
    // ...and the setting itself was reset when the connection was recycled.
    let client = pool.get().await.unwrap();
    let path: String = client.query_one("SHOW search_path", &[]).await.unwrap().get(0);
    assert!(!path.contains("tenant_"), "session search_path leaked: {path}");
}

#[tokio::test]
async fn a_dropped_transaction_rolls_back_and_hands_out_a_clean_connection() {
    let setup = test_pool().await;
    let tenant = provision_tenant(&setup).await;
    let pool = create_pool(&test_db_config().with_max_connections(1)).unwrap();
    let db = TenantDb::new(pool.clone());
    {
        let tx = db.tenant(&tenant).await.unwrap();
        tx.execute("INSERT INTO processed_events (consumer, event_id) VALUES ('dropped', 'x')", &[]).await.unwrap();
        // dropped without commit (a cancelled request)
    }
    let tx = db.tenant(&tenant).await.unwrap();
    let n: i64 = tx
        .query_one("SELECT count(*) FROM processed_events WHERE consumer = 'dropped'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn platform_transactions_see_the_registry_only() {
    let (_pool, db) = crm_testing::test_tenant_db().await;
    let tx = db.platform().await.unwrap();
    let schema: String = tx.query_one("SELECT current_schema()::text", &[]).await.unwrap().get(0);
    assert_eq!(schema, "platform");
    assert!(tx.query("SELECT 1 FROM outbox_pending LIMIT 1", &[]).await.is_ok());
    assert!(tx.query("SELECT 1 FROM processed_events LIMIT 1", &[]).await.is_err(), "tenant tables are not on the platform path");
}

#[tokio::test]
async fn the_registry_caches_and_follows_invalidation() {
    let (pool, db) = crm_testing::test_tenant_db().await;
    let tenant = provision_tenant(&pool).await;
    let registry = crm_tenant::TenantRegistry::new(db, std::time::Duration::from_secs(60));
    let record = registry.by_id(&tenant).await.unwrap().unwrap();
    assert!(record.is_active());
    assert_eq!(registry.by_subdomain(&record.subdomain.to_uppercase()).await.unwrap().unwrap().id, tenant);

    let client = pool.get().await.unwrap();
    client
        .execute("UPDATE platform.tenants SET status = 'suspended' WHERE id = $1", &[&tenant.to_string()])
        .await
        .unwrap();
    assert!(registry.by_id(&tenant).await.unwrap().unwrap().is_active(), "cached until invalidated or expired");
    registry.invalidate(&tenant);
    assert!(!registry.by_id(&tenant).await.unwrap().unwrap().is_active());
    assert!(registry.by_id(&TenantId::new()).await.unwrap().is_none());
}
