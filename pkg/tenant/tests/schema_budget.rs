//! A pooled connection that has run transactions in `max_schemas_per_connection` distinct
//! schemas is replaced at its next checkout: PostgreSQL keeps the catalog entries of every
//! table a backend has touched for the backend's life, so with thousands of tenant schemas a
//! connection that meets them all grows without bound (issue 14 item 3). Transactions in
//! schemas it has already met do not count again.

use crm_tenant::{TenantDb, TenantId};
use crm_testing::test_db_config;

/// The backend serving a scoped transaction of `tenant` (the schema need not exist: only
/// `BEGIN` with its search path and `pg_backend_pid()` run).
async fn backend(db: &TenantDb, tenant: &TenantId) -> i32 {
    let tx = db.tenant(tenant).await.expect("a scoped transaction");
    let pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).await.expect("query").get(0);
    tx.commit().await.expect("commit");
    pid
}

#[tokio::test]
async fn a_connection_is_replaced_after_its_maximum_of_distinct_schemas() {
    let mut config = test_db_config().with_max_connections(1);
    config.max_schemas_per_connection = 3;
    let db = TenantDb::new(crm_database::create_pool(&config).unwrap());
    let tenants: Vec<TenantId> = (0..4).map(|_| TenantId::new()).collect();

    let first = backend(&db, &tenants[0]).await;
    // Going back to schemas already met costs nothing against the budget.
    for tenant in [&tenants[0], &tenants[1], &tenants[0], &tenants[1], &tenants[0]] {
        assert_eq!(backend(&db, tenant).await, first, "two distinct schemas: the same connection");
    }
    // The third distinct schema is served by the same connection; it is then at its budget.
    assert_eq!(backend(&db, &tenants[2]).await, first);
    let second = backend(&db, &tenants[3]).await;
    assert_ne!(second, first, "after 3 distinct schemas the next checkout opens a new connection");
    // The new connection starts its own count.
    assert_eq!(backend(&db, &tenants[0]).await, second);
    assert_eq!(backend(&db, &tenants[3]).await, second);
}

#[tokio::test]
async fn without_a_limit_a_connection_serves_any_number_of_schemas() {
    let mut config = test_db_config().with_max_connections(1);
    config.max_schemas_per_connection = 0;
    let db = TenantDb::new(crm_database::create_pool(&config).unwrap());
    let first = backend(&db, &TenantId::new()).await;
    for _ in 0..20 {
        assert_eq!(backend(&db, &TenantId::new()).await, first);
    }
}
