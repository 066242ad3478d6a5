//! The pool's checkout runs no query (deadpool `RecyclingMethod::Fast`: only
//! `Client::is_closed`); what the checkout query did is done by the scoped transaction's own
//! first round trip (`crm_database::CLEAN_SQL` before `BEGIN`), and a connection whose server
//! went away is replaced by `TenantDb` without an error (issue 14 item 2).

use crm_database::create_pool;
use crm_tenant::TenantDb;
use crm_testing::{provision_tenant, test_db_config, test_pool};

#[tokio::test]
async fn work_left_in_a_transaction_on_a_pooled_connection_is_never_committed_by_the_next_user() {
    let setup = test_pool().await;
    let tenant = provision_tenant(&setup).await;
    let pool = create_pool(&test_db_config().with_max_connections(1)).unwrap();
    let db = TenantDb::new(pool.clone());
    // System code on a raw connection leaves a transaction open, and a session setting.
    {
        let client = pool.get().await.unwrap();
        let sql = format!(
            "BEGIN; INSERT INTO {}.processed_events (consumer, event_id) VALUES ('left-open', 'x'); SET work_mem = '77MB'",
            tenant.schema().quoted()
        );
        client.batch_execute(&sql).await.unwrap();
    }
    // The next user of the (only) connection commits its own work only, with clean settings.
    let tx = db.tenant(&tenant).await.unwrap();
    let work_mem: String = tx.query_one("SELECT current_setting('work_mem')", &[]).await.unwrap().get(0);
    assert_ne!(work_mem, "77MB", "a session setting survived into the next transaction");
    tx.execute("INSERT INTO processed_events (consumer, event_id) VALUES ('next', 'y')", &[]).await.unwrap();
    tx.commit().await.unwrap();
    let tx = db.tenant(&tenant).await.unwrap();
    let left: i64 = tx.query_one("SELECT count(*) FROM processed_events WHERE consumer = 'left-open'", &[]).await.unwrap().get(0);
    let next: i64 = tx.query_one("SELECT count(*) FROM processed_events WHERE consumer = 'next'", &[]).await.unwrap().get(0);
    tx.commit().await.unwrap();
    assert_eq!((left, next), (0, 1));
}

#[tokio::test]
async fn a_connection_closed_by_the_server_is_replaced_without_an_error() {
    let setup = test_pool().await;
    let tenant = provision_tenant(&setup).await;
    let pool = create_pool(&test_db_config().with_max_connections(1)).unwrap();
    let db = TenantDb::new(pool);
    let backend = |db: TenantDb| async move {
        let tx = db.tenant(&tenant).await.expect("a scoped transaction");
        let pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).await.expect("query").get(0);
        tx.commit().await.expect("commit");
        pid
    };
    let first = backend(db.clone()).await;
    // The server ends the pooled connection (as a restart or an administrator would).
    let client = setup.get().await.unwrap();
    let ended: bool = client.query_one("SELECT pg_terminate_backend($1, 5000)", &[&first]).await.unwrap().get(0);
    assert!(ended, "backend {first} ended within 5 s");
    drop(client);
    let next = backend(db.clone()).await;
    assert_ne!(next, first, "a new connection serves the next transaction");
    assert_eq!(backend(db.clone()).await, next, "and is kept in the pool");
}
