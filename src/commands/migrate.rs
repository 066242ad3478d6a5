//! `crm migrate`: what the Kubernetes migration Job runs before a rollout.

use std::io::Write;

use crm_database::migrate::{self, FleetOptions};
use crm_database::schema::TENANT_SETS;
use crm_database::{DbConfig, DbProblem, create_database_if_missing, create_pool};

use super::CmdResult;

pub async fn run(concurrency: usize, create_database: bool) -> CmdResult {
    let config = DbConfig::from_env()?.with_application_name("crm-migrate");
    if create_database
        && create_database_if_missing(&config).await?
        && let Some(target) = crm_database::DbTarget::from_url(&config.url)
    {
        println!("created {target}");
    }
    let pool = create_pool(&config.clone().with_max_connections(concurrency + 2))?;
    let summary = migrate::migrate_all(&pool, TENANT_SETS, FleetOptions { concurrency }, |done, total| {
        let width = 40;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        eprint!("\r[{}{}] {done}/{total} tenant schemas", "#".repeat(filled), " ".repeat(width - filled));
        let _ = std::io::stderr().flush();
    })
    .await
    .map_err(|e| DbProblem::new(&config, &e))?;
    eprintln!();
    println!(
        "tenant schemas: {} ({} already current, {} migrated, {} failed); check {:.1} ms, total {:.1} s",
        summary.schemas,
        summary.up_to_date,
        summary.migrated,
        summary.failed.len(),
        summary.check_time.as_secs_f64() * 1000.0,
        summary.total_time.as_secs_f64(),
    );
    for (schema, error) in &summary.failed {
        println!("  failed: {schema}: {error}");
    }
    if summary.failed.is_empty() { Ok(()) } else { Err(format!("{} tenant schemas failed to migrate", summary.failed.len()).into()) }
}
