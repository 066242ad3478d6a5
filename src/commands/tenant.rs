//! `crm tenant ...`: tenant administration through tenant-service's API as the platform
//! operator (so validation, provisioning and events are exactly those of the API).

use clap::Subcommand;
use crm_database::{DbConfig, DbProblem, create_pool};
use serde_json::{Value, json};

use super::{CmdResult, operator_token};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Sign up a tenant and print its admin invitation token.
    Create {
        /// Display name of the tenant, e.g. "Acme Inc".
        #[arg(long)]
        name: String,
        /// Subdomain that identifies the tenant (lowercase letters, digits, hyphens), e.g. acme.
        #[arg(long)]
        subdomain: String,
        /// Email address the first admin's invitation is for.
        #[arg(long)]
        admin_email: String,
    },
    /// List tenants: id, subdomain, status, creation time and name (read from the database).
    List,
    /// Suspend a tenant: its users are refused until it is activated again; data is kept.
    Suspend {
        /// Tenant id (the `id` column of `crm tenant list`).
        id: String,
    },
    /// Activate a suspended tenant again.
    Activate {
        /// Tenant id (the `id` column of `crm tenant list`).
        id: String,
    },
    /// Delete a tenant and ALL its data.
    Delete {
        /// Tenant id (the `id` column of `crm tenant list`).
        id: String,
    },
    /// Write a tenant's archive (every record of every service; the format is in
    /// docs/API.md, "Tenant export") to a file, reading the database directly.
    Export {
        /// Tenant id (the `id` column of `crm tenant list`).
        id: String,
        /// The archive to write (.tar.gz).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Load a tenant archive (from `crm tenant export` or the export API) into this
    /// installation's database as a new tenant, all or nothing.
    Import {
        /// The archive (.tar.gz).
        file: std::path::PathBuf,
        /// Another subdomain than the archive's.
        #[arg(long)]
        subdomain: Option<String>,
        /// A new tenant id instead of the archive's (a copy next to the original).
        #[arg(long)]
        new_id: bool,
    },
}

fn tenant_url() -> String {
    std::env::var("TENANT_SERVICE_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "http://127.0.0.1:8081".into())
}

pub async fn run(command: TenantCommand) -> CmdResult {
    match command {
        TenantCommand::Create { name, subdomain, admin_email } => {
            let body = call(reqwest::Method::POST, "/api/v1/tenants", Some(json!({"name": name, "subdomain": subdomain, "admin_email": admin_email}))).await?;
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        TenantCommand::List => list().await?,
        TenantCommand::Suspend { id } => set_status(&id, "suspended").await?,
        TenantCommand::Activate { id } => set_status(&id, "active").await?,
        TenantCommand::Delete { id } => {
            call(reqwest::Method::DELETE, &format!("/api/v1/tenants/{id}"), None).await?;
            println!("deleted {id}");
        }
        TenantCommand::Export { id, out } => {
            let tenant = id.parse().map_err(|_| format!("{id:?} is not a tenant id"))?;
            let manifest = tenant_service::service::archive::write_archive(&direct_db().await?, files_store()?.as_ref(), &tenant, &out).await?;
            let rows: u64 = manifest.tables.iter().map(|t| t.rows).sum();
            println!("wrote {} ({} tables, {rows} rows)", out.display(), manifest.tables.len());
        }
        TenantCommand::Import { file, subdomain, new_id } => {
            let options = tenant_service::service::archive::ImportOptions { subdomain, new_id };
            let tenant = tenant_service::service::archive::import_archive(&direct_db().await?, files_store()?.as_ref(), &file, &options).await?;
            println!("imported {} as {} ({})", file.display(), tenant.subdomain, tenant.id);
        }
    }
    Ok(())
}

async fn set_status(id: &str, status: &str) -> CmdResult {
    let body = call(reqwest::Method::PATCH, &format!("/api/v1/tenants/{id}"), Some(json!({"status": status}))).await?;
    println!("{} is now {}", body["subdomain"].as_str().unwrap_or(id), body["status"].as_str().unwrap_or(status));
    Ok(())
}

pub async fn call(method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Box<dyn std::error::Error>> {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", tenant_url())).bearer_auth(operator_token()?);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.map_err(|e| format!("tenant-service at {} unreachable: {e}", tenant_url()))?;
    let status = resp.status();
    let text = resp.text().await?;
    let value: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!("{status}: {}", value["error"].as_str().unwrap_or("request failed")).into())
    }
}

/// The database of `DATABASE_URL`, with the platform schema brought up to date (an import
/// into a fresh installation needs it).
async fn direct_db() -> Result<crm_tenant::TenantDb, Box<dyn std::error::Error>> {
    let config = DbConfig::from_env()?;
    let pool = create_pool(&config.clone().with_max_connections(2))?;
    crm_database::migrate::migrate_platform(&pool).await?;
    Ok(crm_tenant::TenantDb::new(pool))
}

/// The files store (`ATTACHMENTS_URL`, as the services use it).
fn files_store() -> Result<std::sync::Arc<dyn object_store::ObjectStore>, Box<dyn std::error::Error>> {
    let url = std::env::var("ATTACHMENTS_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| tenant_service::DEFAULT_ATTACHMENTS_URL.to_owned());
    Ok(tenant_service::service::exports::open_store(&url).map_err(|e| format!("ATTACHMENTS_URL: {e}"))?)
}

async fn list() -> CmdResult {
    let config = DbConfig::from_env()?;
    let pool = create_pool(&config.clone().with_max_connections(1))?;
    let client = pool.get().await.map_err(|e| DbProblem::new(&config, &e))?;
    let rows = client
        .query("SELECT id, subdomain, status, name, created_at::text FROM platform.tenants ORDER BY created_at", &[])
        .await
        .map_err(|e| DbProblem::new(&config, &e))?;
    println!("{:<26}  {:<24}  {:<9}  {:<19}  name", "id", "subdomain", "status", "created");
    for row in rows {
        let created: String = row.get(4);
        println!(
            "{:<26}  {:<24}  {:<9}  {:<19}  {}",
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            &created[..created.len().min(19)],
            row.get::<_, String>(3)
        );
    }
    Ok(())
}
