//! `DATABASE_READ_URL` on a real streaming replica of the test server (`scripts/replica.sh`,
//! issue 14 item 4), through `crm serve`:
//!
//! * lists are served by the replica: with its replay paused, a second user's deal and
//!   contact lists do not show what the first user has just created;
//! * the first user reads their own writes (the primary serves their reads), and so does any
//!   client that sends back the write's `Crm-Lsn`;
//! * once replay resumes, everyone sees the writes; `/health` reports the replica and its lag;
//! * the replica stopped: reads and writes still work (served by the primary), `/health` stays
//!   200 and says the replica is down; started again, reads go back to it.
//!
//! Holds the replica tests' advisory lock (`pkg/tenant/tests/read_replica.rs` pauses replay
//! on the same replica). Skipped, with the reason printed, only when the replica cannot be
//! started on this machine (not root); `scripts/test.sh` starts it before the tests.

use std::process::Command;
use std::time::Duration;

use crm_database::{DbConfig, create_pool};
use crm_testing::{NatsServer, TestDatabase, wait_until, with_database};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

/// Advisory lock key shared by the tests that use the replica ("CRMR").
const REPLICA_LOCK: i64 = 0x4352_4d52;
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/replica.sh");

/// Starts the replica (idempotent) and returns its base URL, or `None` when this machine
/// cannot run it (the reason is printed). A failure as root is a test failure.
fn replica_base() -> Option<String> {
    let out = Command::new(SCRIPT).arg("start").output().expect("run scripts/replica.sh");
    if out.status.success() {
        let url = Command::new(SCRIPT).arg("url").output().expect("scripts/replica.sh url");
        return Some(String::from_utf8_lossy(&url.stdout).trim().to_owned());
    }
    let why = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    assert!(!root, "scripts/replica.sh failed as root: {why}");
    eprintln!("SKIPPED: no streaming replica on this machine (scripts/replica.sh needs root or the postgres user): {why}");
    None
}

/// Replay paused on the replica until dropped; the replica started again if it was stopped.
struct ReplicaGuard {
    admin_url: String,
}

impl ReplicaGuard {
    fn sql(&self, sql: &str) {
        let out = Command::new("psql").args(["-X", "-q", "-Atc", sql, &self.admin_url]).output().expect("psql");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for ReplicaGuard {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("start").output();
        let _ = Command::new("psql").args(["-X", "-q", "-Atc", "SELECT pg_wal_replay_resume()", &self.admin_url]).output();
    }
}

/// A request with the caller's token and extra headers; the body and the `Crm-Lsn` answered.
async fn call(crm: &Crm, method: Method, path: &str, token: &str, headers: &[(&str, &str)], body: Option<Value>) -> (StatusCode, Value, Option<String>) {
    let mut req = crm.http.request(method, format!("{}{path}", crm.url())).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let lsn = resp.headers().get("crm-lsn").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null), lsn)
}

/// The titles (deals) or last names (contacts) of a list's first page.
async fn names(crm: &Crm, path: &str, token: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let (status, body, _) = call(crm, Method::GET, path, token, headers, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    let key = if path.contains("deals") { "title" } else { "last_name" };
    body["data"].as_array().expect("data").iter().filter_map(|d| d[key].as_str().map(str::to_owned)).collect()
}

async fn replica_health(crm: &Crm) -> Value {
    let r = crm.api().call(Method::GET, "/health", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "the primary alone makes the platform healthy: {}", r.body);
    r.body["database"]["replica"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_from_the_replica_and_users_read_their_own_writes() {
    let Some(base) = replica_base() else { return };
    let db = TestDatabase::create("crm_e2e_replica").await;
    // In the `postgres` database: advisory locks are per database.
    let lock = create_pool(&DbConfig { url: with_database(&db.url, "postgres"), ..DbConfig::default() }.with_max_connections(1)).unwrap();
    let lock = lock.get().await.expect("primary");
    lock.execute("SELECT pg_advisory_lock($1)", &[&REPLICA_LOCK]).await.unwrap();
    let guard = ReplicaGuard { admin_url: format!("{base}/postgres") };
    let nats = NatsServer::start().await;
    // Short timeouts: the replica is stopped below, and the read pool must find out quickly.
    let env = [("DATABASE_READ_URL", format!("{base}/{}", db.name)), ("DB_CONNECT_TIMEOUT_SECS", "2".into())];
    let env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let crm = Crm::start_with(Backends { database_url: db.url.clone(), nats_url: nats.url(), env }).await;
    let api = crm.api();

    let replica = replica_health(&crm).await;
    assert_eq!((replica["healthy"].as_bool(), replica["in_recovery"].as_bool()), (Some(true), Some(true)), "{replica}");
    assert!(replica["lag_bytes"].is_u64(), "{replica}");

    let admin = signup_admin(&api, "Replica Inc", "replica").await;
    let reader = invite_user(&api, &admin, "reader@replica.example", "admin").await;
    let (status, body, _) = call(&crm, Method::POST, "/api/v1/deals", &admin.token, &[], Some(json!({"title": "First", "value": 10}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    wait_until("the first deal in the reader's list", WAIT, || async {
        names(&crm, "/api/v1/deals", &reader.token, &[]).await.contains(&"First".to_owned()).then_some(())
    })
    .await;

    // Replay paused: what the admin writes now is on the primary only.
    guard.sql("SELECT pg_wal_replay_pause()");
    let (status, body, lsn) = call(&crm, Method::POST, "/api/v1/deals", &admin.token, &[], Some(json!({"title": "Second", "value": 20}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let lsn = lsn.expect("a write answers with its Crm-Lsn");
    let (status, body, _) =
        call(&crm, Method::POST, "/api/v1/contacts", &admin.token, &[], Some(json!({"first_name": "Ada", "last_name": "Unreplayed"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let deals = names(&crm, "/api/v1/deals", &admin.token, &[]).await;
    assert!(deals.contains(&"Second".to_owned()), "the writer reads their own write: {deals:?}");
    let contacts = names(&crm, "/api/v1/contacts", &admin.token, &[]).await;
    assert!(contacts.contains(&"Unreplayed".to_owned()), "the writer reads their own write: {contacts:?}");
    let deals = names(&crm, "/api/v1/deals", &reader.token, &[]).await;
    assert_eq!(deals, ["First"], "another user's list comes from the (paused) replica");
    let contacts = names(&crm, "/api/v1/contacts?search=Unreplayed", &reader.token, &[]).await;
    assert!(contacts.is_empty(), "another user's search comes from the (paused) replica: {contacts:?}");
    let deals = names(&crm, "/api/v1/deals", &reader.token, &[("Crm-Lsn", &lsn)]).await;
    assert!(deals.contains(&"Second".to_owned()), "a client sending the write's Crm-Lsn reads it: {deals:?}");

    guard.sql("SELECT pg_wal_replay_resume()");
    wait_until("the replica to replay the second deal", WAIT, || async {
        names(&crm, "/api/v1/deals", &reader.token, &[]).await.contains(&"Second".to_owned()).then_some(())
    })
    .await;

    // The replica stopped: reads fall back to the primary; writes are unaffected.
    let stopped = Command::new(SCRIPT).arg("stop").output().expect("scripts/replica.sh stop");
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    let (status, body, _) = call(&crm, Method::POST, "/api/v1/deals", &admin.token, &[], Some(json!({"title": "Third", "value": 30}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let deals = names(&crm, "/api/v1/deals", &reader.token, &[]).await;
    assert!(deals.contains(&"Third".to_owned()), "served by the primary while the replica is down: {deals:?}");
    let contacts = names(&crm, "/api/v1/contacts", &reader.token, &[]).await;
    assert!(contacts.contains(&"Unreplayed".to_owned()), "{contacts:?}");
    let replica = replica_health(&crm).await;
    assert_eq!((replica["healthy"].as_bool(), replica["serving_reads"].as_bool()), (Some(false), Some(false)), "{replica}");

    let started = Command::new(SCRIPT).arg("start").output().expect("scripts/replica.sh start");
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    // replica.sh waited for it to stream again (a restarted standby first replays the WAL
    // written since its last restart point: up to minutes on a busy shared server).
    wait_until("reads to go back to the replica", Duration::from_secs(60), || async {
        let replica = replica_health(&crm).await;
        (replica["serving_reads"] == true).then_some(())
    })
    .await;
    let deals = names(&crm, "/api/v1/deals", &reader.token, &[]).await;
    assert!(deals.contains(&"Third".to_owned()), "{deals:?}");
    drop(guard);
}
