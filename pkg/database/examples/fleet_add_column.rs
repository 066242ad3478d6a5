//! One added column across every tenant schema of an existing database, through the
//! migration runner's fleet path (`migrate_all`), with every service's tables present: the
//! fleet-DDL measurement of `scripts/bench-tenants.sh` (issue 14 item 3).
//!
//! ```text
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_scale \
//!   cargo run --release -p crm-database --example fleet_add_column -- 8
//! ```
//! The argument is the concurrency (default 8, the runner's default). A throwaway set
//! `bench_column` is applied in two steps: V1 (a no-op, so its history table exists in every
//! schema before the clock starts), then V2 `ALTER TABLE contacts ADD COLUMN ...`, timed.
//! Prints `add column: <schemas> schemas, <seconds> s, <failed> failed`. Leaves the column
//! and the set's history tables behind (a benchmark database).

use std::time::Instant;

use crm_database::migrate::{self, FleetOptions, MigrationSet};
use crm_database::{DbConfig, create_pool};
use refinery::{Migration, Runner};

const V1: &str = "SELECT 1";
const V2: &str = "ALTER TABLE contacts ADD COLUMN bench_flag BOOLEAN NOT NULL DEFAULT false";

fn v1() -> Runner {
    Runner::new(&[Migration::unapplied("V1__bench_noop", V1).unwrap()])
}
fn v2() -> Runner {
    Runner::new(&[
        Migration::unapplied("V1__bench_noop", V1).unwrap(),
        Migration::unapplied("V2__bench_flag", V2).unwrap(),
    ])
}

#[tokio::main]
async fn main() {
    let concurrency: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/crm_scale".into());
    let pool = create_pool(&DbConfig { url, ..DbConfig::default() }.with_max_connections(concurrency + 2)).unwrap();
    let options = FleetOptions { concurrency };

    let started = Instant::now();
    let s = migrate::migrate_all(&pool, &[MigrationSet::new("bench_column", v1)], options, |_, _| {}).await.unwrap();
    println!("set up (no-op V1): {} schemas, {:.1} s, {} failed", s.schemas, started.elapsed().as_secs_f64(), s.failed.len());

    let started = Instant::now();
    let s = migrate::migrate_all(&pool, &[MigrationSet::new("bench_column", v2)], options, |_, _| {}).await.unwrap();
    println!(
        "add column: {} schemas, {:.1} s, {} failed (concurrency {concurrency})",
        s.migrated,
        started.elapsed().as_secs_f64(),
        s.failed.len()
    );
    for (schema, error) in s.failed.iter().take(3) {
        println!("  {schema}: {error}");
    }
}
