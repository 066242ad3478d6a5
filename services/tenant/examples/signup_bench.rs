//! Signup (provisioning) through the HTTP API: 200 sequential signups, then 200 more at 8
//! concurrent, 50 signups that find a spare schema ready, then the catalog size once the
//! database holds 1,000 tenants.
//!
//! ```text
//! psql -h 127.0.0.1 -U postgres -c 'drop database if exists crm_bench_signup with (force)' -c 'create database crm_bench_signup'
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_signup \
//!   cargo run --release -p crm-tenant-service --example signup_bench
//! ```

use std::time::{Duration, Instant};

use crm_testing::{TEST_OPERATOR_TOKEN, TestPlatform};
use futures::StreamExt;
use serde_json::json;
use tenant_service::{AppState, Settings};

fn stats(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    println!("{label}: n={} median {:.1} ms, p95 {:.1} ms, max {:.1} ms", times.len(), pct(0.5), pct(0.95), pct(1.0));
}

async fn signup(http: &reqwest::Client, url: &str) -> Duration {
    let subdomain = format!("b{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let started = Instant::now();
    let r = http
        .post(format!("{url}/api/v1/tenants"))
        .bearer_auth(TEST_OPERATOR_TOKEN)
        .json(&json!({"name": "Bench", "subdomain": subdomain, "admin_email": "a@b.co"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let platform = TestPlatform::start().await;
    let state = AppState::new(
        platform.db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        Settings::default(),
    );
    let url = platform.serve("tenant-service", tenant_service::router(state)).await;
    let http = reqwest::Client::new();

    let mut sequential = Vec::new();
    for _ in 0..200 {
        sequential.push(signup(&http, &url).await);
    }
    stats("200 sequential signups", sequential);

    let started = Instant::now();
    let concurrent: Vec<Duration> = futures::stream::iter(0..200).map(|_| signup(&http, &url)).buffer_unordered(8).collect().await;
    let wall = started.elapsed();
    stats("200 signups, 8 concurrent", concurrent);
    println!("  throughput {:.1} signups/s", 200.0 / wall.as_secs_f64());

    // With spares: each signup finds a spare ready (the refill task made it meanwhile), as
    // signups arriving seconds apart do in production.
    let spare_state = AppState::new(
        platform.db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        Settings { spare_schemas: 1, ..Settings::default() },
    );
    for task in spare_state.tasks() {
        tokio::spawn(task.future);
    }
    let spare_url = platform.serve("tenant-service", tenant_service::router(spare_state)).await;
    let client = platform.pool.get().await.expect("connection");
    let mut with_spares = Vec::new();
    for _ in 0..50 {
        crm_testing::wait_until("a spare schema", Duration::from_secs(10), || async {
            let n: i64 = client.query_one("SELECT count(*) FROM platform.spare_schemas", &[]).await.ok()?.get(0);
            (n > 0).then_some(())
        })
        .await;
        with_spares.push(signup(&http, &spare_url).await);
    }
    stats("50 signups taking a spare schema", with_spares);

    let existing: i64 = client.query_one("SELECT count(*) FROM platform.tenants", &[]).await.expect("count").get(0);
    let remaining = (1000 - existing).max(0) as usize;
    futures::stream::iter(0..remaining).map(|_| signup(&http, &url)).buffer_unordered(8).count().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM platform.tenants), \
                    (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'), \
                    (SELECT count(*) FROM pg_class), \
                    pg_size_pretty(pg_database_size(current_database())), \
                    pg_size_pretty(pg_total_relation_size('pg_catalog.pg_class') + pg_total_relation_size('pg_catalog.pg_attribute'))",
            &[],
        )
        .await
        .expect("catalog");
    println!(
        "after {} tenants: {} tenant schemas, {} relations in pg_class, database {}, pg_class+pg_attribute {}",
        row.get::<_, i64>(0),
        row.get::<_, i64>(1),
        row.get::<_, i64>(2),
        row.get::<_, String>(3),
        row.get::<_, String>(4)
    );
}
