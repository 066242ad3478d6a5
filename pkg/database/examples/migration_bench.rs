//! Migration benchmark: provisioning per tenant, the no-op check over the fleet, and one
//! added column applied across every tenant schema.
//!
//! ```text
//! cargo run --release -p crm-database --example migration_bench -- 10000
//! ```
//! Uses (drops and recreates) the database `crm_bench` on the local server, or
//! `BENCH_DATABASE_URL`. `BENCH_SETS=events` provisions only those tenant sets (the fleet
//! mechanics at 10,000 schemas without ~1.3 million catalog relations).

use std::time::{Duration, Instant};

use crm_database::migrate::{self, FleetOptions, MigrationSet};
use crm_database::schema::TENANT_SETS;
use crm_database::{DbConfig, Pool, create_pool};
use futures::StreamExt;
use refinery::{Migration, Runner};

fn notes_v1() -> Runner {
    Runner::new(&[Migration::unapplied("V1__notes", "CREATE TABLE bench_notes (id SERIAL PRIMARY KEY, body TEXT NOT NULL)").unwrap()])
}
fn notes_v2() -> Runner {
    Runner::new(&[
        Migration::unapplied("V1__notes", "CREATE TABLE bench_notes (id SERIAL PRIMARY KEY, body TEXT NOT NULL)").unwrap(),
        Migration::unapplied("V2__notes_pinned", "ALTER TABLE bench_notes ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT false").unwrap(),
    ])
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The tenant sets to provision: all, or those named in `BENCH_SETS`.
fn bench_sets() -> Vec<MigrationSet> {
    match std::env::var("BENCH_SETS") {
        Ok(names) => TENANT_SETS.iter().filter(|s| names.split(',').any(|n| n.trim() == s.name)).copied().collect(),
        Err(_) => TENANT_SETS.to_vec(),
    }
}

#[tokio::main]
async fn main() {
    let tenants: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/crm_bench".into());
    recreate_database(&url).await;
    let pool = create_pool(&DbConfig { url, ..DbConfig::default() }.with_max_connections(16)).unwrap();
    migrate::migrate_platform(&pool).await.unwrap();

    // 1. Provisioning: registry row + schema + every tenant set, one transaction each.
    let sequential = 200.min(tenants);
    let mut times = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        let started = Instant::now();
        provision(&pool).await;
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "provision (sequential, {sequential} tenants, sets: {}): p50 {:.1} ms, p95 {:.1} ms",
        bench_sets().iter().map(|s| s.name).collect::<Vec<_>>().join(","),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
    );
    let started = Instant::now();
    futures::stream::iter(sequential..tenants).map(|_| provision(&pool)).buffer_unordered(8).count().await;
    println!("provision the remaining {} tenants at concurrency 8: {:.1} s", tenants - sequential, started.elapsed().as_secs_f64());

    // 2. The no-op check (what every instance does at start-up).
    for _ in 0..3 {
        let started = Instant::now();
        let status = migrate::fleet_status(&pool, &bench_sets()).await.unwrap();
        let check = started.elapsed();
        let started = Instant::now();
        let summary = migrate::migrate_all(&pool, &bench_sets(), FleetOptions::default(), |_, _| {}).await.unwrap();
        println!(
            "no-op over {} schemas: fleet_status {:.1} ms, full migrate_all {:.1} ms ({} behind, {} migrated)",
            status.schemas,
            ms(check),
            ms(started.elapsed()),
            status.behind.len(),
            summary.migrated,
        );
    }

    // 3. A new set, then one added column across the fleet.
    let v1 = [MigrationSet::new("bench_notes", notes_v1)];
    let v2 = [MigrationSet::new("bench_notes", notes_v2)];
    let started = Instant::now();
    let s = migrate::migrate_all(&pool, &v1, FleetOptions::default(), |_, _| {}).await.unwrap();
    println!("new table (new set) on {} schemas: {:.1} s, {} failed", s.migrated, started.elapsed().as_secs_f64(), s.failed.len());
    for concurrency in [8] {
        let started = Instant::now();
        let s = migrate::migrate_all(&pool, &v2, FleetOptions { concurrency }, |_, _| {}).await.unwrap();
        println!(
            "add one column on {} schemas (concurrency {concurrency}): {:.1} s, {} failed",
            s.migrated,
            started.elapsed().as_secs_f64(),
            s.failed.len()
        );
    }
    let started = Instant::now();
    let status = migrate::fleet_status(&pool, &v2).await.unwrap();
    println!("no-op check after it: {:.1} ms ({} behind)", ms(started.elapsed()), status.behind.len());

    let client = pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM pg_class), pg_size_pretty(pg_database_size(current_database()))",
            &[],
        )
        .await
        .unwrap();
    println!("catalog: {} relations, database size {}", row.get::<_, i64>(0), row.get::<_, String>(1));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn provision(pool: &Pool) {
    let id = ulid::Ulid::generate().to_string();
    let schema = format!("tenant_{}", id.to_ascii_lowercase());
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO platform.tenants (id, name, subdomain, schema_name) VALUES ($1, $2, $3, $4)",
        &[&id, &id, &format!("b{}", id.to_ascii_lowercase()), &schema],
    )
    .await
    .unwrap();
    migrate::provision_schema_with(tx.client(), &schema, &bench_sets()).await.unwrap();
    tx.commit().await.unwrap();
}

async fn recreate_database(url: &str) {
    let (base, name) = url.rsplit_once('/').expect("database URL with a database name");
    let (client, conn) = tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.unwrap();
    client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
}
