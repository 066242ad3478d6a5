//! `TenantDb::tenant_read` against a real streaming replica of the test server
//! (`scripts/replica.sh`, port 5433; issue 14 item 4): reads go to the replica, except those
//! that must show a write the replica has not replayed yet (the request's own, its user's
//! recent ones in this process, the client's `Crm-Lsn`), which the primary serves; an
//! unreachable replica leaves every read to the primary.
//!
//! Replay is paused on the replica to make "not replayed yet" certain (no timing). The test
//! holds an advisory lock on the primary meanwhile, so the other test that uses the shared
//! replica (`tests/e2e/read_replica.rs`, which stops it) never runs at the same time.
//!
//! Skipped, with the reason printed, only when the replica cannot be started on this machine
//! (not root, no PostgreSQL binaries); `scripts/test.sh` starts it before the tests.

use std::process::Command;
use std::time::Duration;

use crm_database::{DbConfig, Lsn, Pool, create_pool};
use crm_tenant::{TenantDb, TenantId};
use crm_testing::{free_port, provision_tenant, test_db_config, test_pool, wait_until, with_database};

/// Advisory lock key shared by the tests that use the replica ("CRMR").
const REPLICA_LOCK: i64 = 0x4352_4d52;
const WAIT: Duration = Duration::from_secs(30);

/// Starts the replica (idempotent) and returns its base URL, or `None` when this machine
/// cannot run it (then the reason is printed). A failure as root is a test failure.
fn replica_base() -> Option<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/replica.sh");
    let out = Command::new(script).arg("start").output().expect("run scripts/replica.sh");
    if out.status.success() {
        let url = Command::new(script).arg("url").output().expect("scripts/replica.sh url");
        return Some(String::from_utf8_lossy(&url.stdout).trim().to_owned());
    }
    let why = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    assert!(!root, "scripts/replica.sh failed as root: {why}");
    eprintln!("SKIPPED: no streaming replica on this machine (scripts/replica.sh needs root or the postgres user): {why}");
    None
}

/// Pauses WAL replay on the replica; resumes it when dropped (also when the test panics).
struct ReplayPaused {
    admin_url: String,
}

impl ReplayPaused {
    async fn pause(base: &str) -> Self {
        let admin_url = format!("{base}/postgres");
        let pool = pool_on(&admin_url);
        pool.get().await.expect("replica").execute("SELECT pg_wal_replay_pause()", &[]).await.expect("pause replay");
        Self { admin_url }
    }
}

impl Drop for ReplayPaused {
    fn drop(&mut self) {
        let _ = Command::new("psql").args(["-X", "-q", "-Atc", "SELECT pg_wal_replay_resume()", &self.admin_url]).output();
    }
}

fn pool_on(url: &str) -> Pool {
    create_pool(&DbConfig { url: url.to_owned(), ..test_db_config() }.with_max_connections(2)).expect("pool")
}

/// Whether the read ran on a server in recovery, and how many of the test's rows it saw.
async fn read(db: &TenantDb, tenant: &TenantId) -> (bool, i64) {
    let tx = db.tenant_read(tenant).await.expect("a read transaction");
    let row = tx
        .query_one("SELECT pg_is_in_recovery(), (SELECT count(*) FROM processed_events WHERE consumer = 'replica-test')", &[])
        .await
        .expect("read");
    tx.commit().await.expect("end the read");
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn reads_go_to_the_replica_unless_it_has_not_replayed_what_the_request_knows_of() {
    let Some(base) = replica_base() else { return };
    let setup = test_pool().await;
    // In the `postgres` database: advisory locks are per database.
    let lock = pool_on(&with_database(&test_db_config().url, "postgres"));
    let lock = lock.get().await.unwrap();
    lock.execute("SELECT pg_advisory_lock($1)", &[&REPLICA_LOCK]).await.unwrap();
    let tenant = provision_tenant(&setup).await;
    let primary = test_db_config();
    let database = primary.url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let db = TenantDb::new(create_pool(&primary).unwrap()).with_read_replica(pool_on(&format!("{base}/{database}")));

    // The tenant's schema reaches the replica; a read outside any request is served there.
    wait_until("the new tenant's tables on the replica", WAIT, || async {
        let tx = db.tenant_read(&tenant).await.ok()?;
        tx.query("SELECT 1 FROM processed_events LIMIT 1", &[]).await.ok()?;
        let on_replica: bool = tx.query_one("SELECT pg_is_in_recovery()", &[]).await.ok()?.get(0);
        on_replica.then_some(())
    })
    .await;
    let tx = db.tenant_read(&tenant).await.unwrap();
    let write = tx.execute("INSERT INTO processed_events (consumer, event_id) VALUES ('replica-test', 'ro')", &[]).await;
    assert!(write.is_err(), "a lag-tolerant read transaction is read only");
    drop(tx);

    let paused = ReplayPaused::pause(&base).await;
    // A request of user 1 writes, then lists: its own commit sends the read to the primary.
    let writer = (tenant, 1);
    let reads = db.request_reads(Some(writer), None).expect("a replica is configured");
    let seen = reads
        .clone()
        .scope(async {
            let tx = db.tenant(&tenant).await.unwrap();
            tx.execute("INSERT INTO processed_events (consumer, event_id) VALUES ('replica-test', 'w')", &[]).await.unwrap();
            tx.commit().await.unwrap();
            read(&db, &tenant).await
        })
        .await;
    assert_eq!(seen, (false, 1), "the request's own write is read on the primary");
    let written: Lsn = reads.written().expect("the commit's WAL position");

    let in_request = |user: i32, after: Option<Lsn>| {
        let reads = db.request_reads(Some((tenant, user)), after).unwrap();
        let db = db.clone();
        async move { reads.scope(async { read(&db, &tenant).await }).await }
    };
    assert_eq!(in_request(1, None).await, (false, 1), "the same user's next request (this process remembers the write)");
    assert_eq!(in_request(2, None).await, (true, 0), "another user's list comes from the replica, which has not replayed the write");
    assert_eq!(in_request(2, Some(written)).await, (false, 1), "a client that sends the write's Crm-Lsn reads it");
    assert_eq!(read(&db, &tenant).await, (true, 0), "outside a request: the replica");
    assert!(db.reads_behind_replica() >= 3);
    let health = db.health(WAIT).await;
    let replica = health.replica.expect("replica health");
    assert!(replica.healthy && replica.in_recovery && replica.serving_reads, "{replica:?}");

    drop(paused);
    wait_until("the replica to replay the write", WAIT, || async {
        let seen = in_request(2, None).await;
        (seen == (true, 1)).then_some(())
    })
    .await;
    assert_eq!(in_request(2, Some(written)).await, (true, 1), "once replayed, even the write's Crm-Lsn reads on the replica");
    let health = db.health(WAIT).await.replica.expect("replica health");
    assert!(health.lag_bytes.is_some() && health.lag_seconds.is_some(), "{health:?}");
}

#[tokio::test]
async fn an_unreachable_replica_leaves_the_reads_to_the_primary() {
    let setup = test_pool().await;
    let tenant = provision_tenant(&setup).await;
    // Nothing listens there: connections are refused at once.
    let nowhere = format!("postgres://postgres@127.0.0.1:{}/none", free_port());
    let db = TenantDb::new(create_pool(&test_db_config()).unwrap()).with_read_replica(pool_on(&nowhere));
    for _ in 0..3 {
        assert_eq!(read(&db, &tenant).await, (false, 0), "served by the primary");
    }
    let health = db.health(Duration::from_secs(5)).await;
    assert!(health.healthy, "the primary is what makes the service healthy");
    let replica = health.replica.expect("replica health");
    assert!(!replica.healthy && !replica.serving_reads && replica.error.is_some(), "{replica:?}");
}
