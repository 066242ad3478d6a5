//! Tenant archives (issue 16, "Tenant export"): every record of every service of one tenant
//! in one file that `crm tenant import` loads into another installation.
//!
//! An archive is a gzip-compressed tar:
//! * `manifest.json`: [`Manifest`] (format name and version, the tenant, its settings, the
//!   migration version of each set, and per table its columns and row count);
//! * `tables/<table>.jsonl`: the table's rows, one JSON object per line (`row_to_json`:
//!   column names as keys, PostgreSQL's JSON rendering of each value);
//! * `files/<key>`: every object under the tenant's prefix (`<tenant id>/`) in the files
//!   store (`ATTACHMENTS_URL`), export archives excepted.
//!
//! What is left out, on purpose: this installation's bookkeeping (the outbox, consumers'
//! processed-event marks, dead letters, migration history) and credentials that only make
//! sense here (refresh tokens, password reset tokens: users sign in again; password hashes
//! are kept, so they sign in with their passwords).
//!
//! Export reads the tenant in one `REPEATABLE READ` snapshot, page by page (memory stays flat
//! however big the tenant). Import creates the tenant and its schema, empties the rows the
//! migrations seed, loads every table with its foreign keys lifted and checks them when they
//! are put back, moves the sequences past the loaded ids and publishes `tenant.created`: one
//! transaction, so a failed import leaves nothing behind.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use crm_client_tenant::TenantDetails;
use crm_client_tenant::subjects::TENANT_CREATED;
use crm_events::publish_platform;
use crm_tenant::{DbError, TenantDb, TenantId};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::error::SqlState;

use crate::repo::{self, archive as sql};

/// `format` of every archive's manifest.
pub const FORMAT: &str = "crm-tenant-archive";
/// The manifest version this code writes and reads.
pub const VERSION: u32 = 1;
/// Rows read (export) or written (import) per statement.
const PAGE: i64 = 2000;

/// Tables an archive does not carry (see the module documentation).
fn carried(table: &str) -> bool {
    const LEFT_OUT: &[&str] = &["outbox", "processed_events", "dead_letters", "refresh_tokens", "password_reset_tokens"];
    !LEFT_OUT.contains(&table) && !table.ends_with("_schema_history")
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written.
    pub version: u32,
    pub exported_at: DateTime<Utc>,
    pub tenant: ArchivedTenant,
    /// The tenant's `platform.tenant_settings` row (`null`: the defaults).
    pub settings: Option<serde_json::Value>,
    /// Migration set -> highest applied version (an archive loads only into an installation
    /// at least as new).
    pub migrations: BTreeMap<String, i32>,
    pub tables: Vec<ArchivedTable>,
    /// The tenant's stored files (attachments), each at `files/<key>` in the archive, `key`
    /// relative to the tenant's prefix in the files store.
    #[serde(default)]
    pub files: Vec<ArchivedFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedFile {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedTenant {
    pub id: String,
    pub name: String,
    pub subdomain: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedTable {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: u64,
}

/// Why an archive could not be written or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("provisioning the tenant schema: {0}")]
    Migrate(#[from] crm_database::migrate::MigrateError),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    #[error("manifest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("event: {0}")]
    Publish(#[from] crm_events::PublishError),
    /// The archive cannot be loaded here (the message says why); nothing was written.
    #[error("{0}")]
    Refused(String),
}

fn refused(message: impl Into<String>) -> ArchiveError {
    ArchiveError::Refused(message.into())
}

fn table_file(dir: &Path, table: &str) -> PathBuf {
    dir.join("tables").join(format!("{table}.jsonl"))
}

/// Writes the archive of `tenant` to `out` (a `.tar.gz` file, created or replaced); its manifest.
pub async fn write_archive(db: &TenantDb, files: &dyn ObjectStore, tenant: &TenantId, out: &Path) -> Result<Manifest, ArchiveError> {
    let platform = db.platform().await?;
    let record = repo::tenant_by_id(&platform, tenant).await?.ok_or_else(|| refused(format!("tenant {tenant} not found")))?;
    let settings = sql::settings_json(&platform, tenant).await?.map(|s| serde_json::from_str(&s)).transpose()?;
    platform.commit().await?;

    let work = tempfile::tempdir()?;
    std::fs::create_dir_all(work.path().join("tables"))?;
    let tx = db.tenant_snapshot(tenant).await?;
    let schema = tx.schema().as_str().to_owned();
    let migrations = sql::migration_versions(&tx, &schema).await?.into_iter().collect();
    let mut tables = Vec::new();
    for name in sql::tables(&tx, &schema).await?.into_iter().filter(|t| carried(t)) {
        let columns = sql::writable_columns(&tx, &schema, &name).await?;
        let mut file = std::io::BufWriter::new(std::fs::File::create(table_file(work.path(), &name))?);
        let (mut rows, mut after) = (0u64, "(0,0)".to_owned());
        loop {
            let (page, last) = sql::rows_after(&tx, &schema, &name, &after, PAGE).await?;
            for row in &page {
                file.write_all(row.as_bytes())?;
                file.write_all(b"\n")?;
            }
            rows += page.len() as u64;
            match last {
                Some(last) if page.len() as i64 == PAGE => after = last,
                _ => break,
            }
        }
        file.flush()?;
        tables.push(ArchivedTable { name, columns, rows });
    }
    tx.rollback().await?;
    let stored = copy_files_out(files, tenant, &work.path().join("files")).await?;

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: VERSION,
        exported_at: Utc::now(),
        tenant: ArchivedTenant {
            id: record.id.clone(),
            name: record.name,
            subdomain: record.subdomain,
            status: record.status,
            created_at: record.created_at,
        },
        settings,
        migrations,
        tables,
        files: stored,
    };
    std::fs::write(work.path().join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;
    let (dir, out) = (work.path().to_owned(), out.to_owned());
    tokio::task::spawn_blocking(move || pack(&dir, &out)).await.map_err(std::io::Error::other)??;
    Ok(manifest)
}

/// `dir` (manifest first) as a gzip-compressed tar at `out`.
fn pack(dir: &Path, out: &Path) -> std::io::Result<()> {
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(out)?, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_path_with_name(dir.join("manifest.json"), "manifest.json")?;
    tar.append_dir_all("tables", dir.join("tables"))?;
    if dir.join("files").exists() {
        tar.append_dir_all("files", dir.join("files"))?;
    }
    tar.into_inner()?.finish()?.sync_all()
}

/// How [`import_archive`] names the new tenant.
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// Another subdomain than the archive's (it is taken here, or a copy is wanted).
    pub subdomain: Option<String>,
    /// A new tenant id instead of the archive's (a second copy in the same installation).
    pub new_id: bool,
}

/// Loads the archive at `file` as a new tenant; the tenant. Refused (nothing written) when
/// the subdomain or id is taken, the archive is from a newer installation or is damaged.
pub async fn import_archive(db: &TenantDb, files: &dyn ObjectStore, file: &Path, options: &ImportOptions) -> Result<TenantDetails, ArchiveError> {
    let work = tempfile::tempdir()?;
    let (src, dir) = (file.to_owned(), work.path().to_owned());
    tokio::task::spawn_blocking(move || unpack(&src, &dir)).await.map_err(std::io::Error::other)??;
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(work.path().join("manifest.json"))?)?;
    if manifest.format != FORMAT || manifest.version > VERSION {
        return Err(refused(format!("not a tenant archive this installation reads ({} version {})", manifest.format, manifest.version)));
    }
    let id = if options.new_id {
        TenantId::new()
    } else {
        manifest.tenant.id.parse().map_err(|_| refused(format!("the archive's tenant id {:?} is not valid", manifest.tenant.id)))?
    };
    let subdomain = options.subdomain.clone().unwrap_or_else(|| manifest.tenant.subdomain.clone());

    let tx = db.platform().await?;
    if repo::tenant_by_id(&tx, &id).await?.is_some() {
        return Err(refused(format!("a tenant with id {id} exists here (import with a new id)")));
    }
    let tenant = repo::insert_tenant(&tx, &id, &manifest.tenant.name, &subdomain).await.map_err(|e| match e {
        DbError::Query(q) if q.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            refused(format!("the subdomain {subdomain:?} is taken here (import with another subdomain)"))
        }
        e => e.into(),
    })?;
    tx.provision_schema(&id).await?;
    let schema = id.schema().as_str().to_owned();

    let here: BTreeMap<String, i32> = sql::migration_versions(&tx, &schema).await?.into_iter().collect();
    for (set, version) in &manifest.migrations {
        if here.get(set).is_none_or(|v| v < version) {
            return Err(refused(format!("the archive needs migration set {set} at version {version}; this installation has {:?}", here.get(set))));
        }
    }
    let existing = sql::tables(&tx, &schema).await?;
    if let Some(unknown) = manifest.tables.iter().find(|t| !existing.contains(&t.name)) {
        return Err(refused(format!("the archive has a table {:?} this installation does not know", unknown.name)));
    }

    let keys = sql::foreign_keys(&tx, &schema).await?;
    for key in &keys {
        sql::drop_foreign_key(&tx, &schema, key).await?;
    }
    let names: Vec<String> = manifest.tables.iter().map(|t| t.name.clone()).collect();
    sql::truncate(&tx, &schema, &names).await?;
    for table in &manifest.tables {
        let writable = sql::writable_columns(&tx, &schema, &table.name).await?;
        let columns: Vec<String> = table.columns.iter().filter(|c| writable.contains(c)).cloned().collect();
        let loaded = load_table(&tx, &schema, &table.name, &columns, &table_file(work.path(), &table.name)).await?;
        if loaded != table.rows {
            return Err(refused(format!("table {}: the manifest says {} rows, the file has {loaded}", table.name, table.rows)));
        }
    }
    for key in &keys {
        sql::add_foreign_key(&tx, &schema, key).await?;
    }
    sql::advance_sequences(&tx, &schema).await?;
    if options.new_id {
        let (old, new) = (format!("{}/", manifest.tenant.id), format!("{id}/"));
        sql::rewrite_storage_keys(&tx, &schema, &old, &new).await?;
    }

    if let Some(mut settings) = manifest.settings.clone() {
        settings["tenant_id"] = serde_json::Value::String(id.to_string());
        let writable = sql::writable_columns(&tx, "platform", "tenant_settings").await?;
        let columns: Vec<String> = settings.as_object().into_iter().flat_map(|o| o.keys()).filter(|k| writable.contains(k)).cloned().collect();
        sql::insert_rows(&tx, "platform", "tenant_settings", &columns, &serde_json::Value::Array(vec![settings.clone()]).to_string()).await?;
        repo::schedule_inactive_leads(&tx, &id, settings["inactive_lead_days"].is_i64()).await?;
    }
    let lookup = super::tenants::TenantLookup {
        tenant: crm_client_tenant::TenantBasicInfo { id: tenant.id.clone(), name: tenant.name.clone(), subdomain: tenant.subdomain.clone() },
        status: tenant.status.clone(),
    };
    publish_platform(&tx, &id, Some("import".to_owned()), TENANT_CREATED, lookup).await?;
    // The files before the commit (a failed copy leaves no rows pointing at nothing); a
    // failed commit removes them again.
    let written = copy_files_in(files, &id, &work.path().join("files"), &manifest.files).await;
    let committed = match written {
        Ok(()) => tx.commit().await.map_err(ArchiveError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = committed {
        remove_files(files, &id, &manifest.files).await;
        return Err(e);
    }
    tracing::info!(tenant_id = %id, subdomain, tables = manifest.tables.len(), files = manifest.files.len(), "tenant imported from an archive");
    Ok(tenant)
}

/// Inserts the JSON lines of `file` into `schema.table`, [`PAGE`] rows per statement; the count.
async fn load_table(tx: &crm_tenant::Scoped, schema: &str, table: &str, columns: &[String], file: &Path) -> Result<u64, ArchiveError> {
    let reader = std::io::BufReader::new(std::fs::File::open(file)?);
    let (mut batch, mut in_batch, mut total) = (String::from("["), 0i64, 0u64);
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if in_batch > 0 {
            batch.push(',');
        }
        batch.push_str(&line);
        in_batch += 1;
        if in_batch == PAGE {
            batch.push(']');
            total += sql::insert_rows(tx, schema, table, columns, &batch).await?;
            (batch, in_batch) = (String::from("["), 0);
        }
    }
    if in_batch > 0 {
        batch.push(']');
        total += sql::insert_rows(tx, schema, table, columns, &batch).await?;
    }
    Ok(total)
}

/// Downloads every object under `<tenant>/` (but `<tenant>/exports/`) into `dir`.
async fn copy_files_out(store: &dyn ObjectStore, tenant: &TenantId, dir: &Path) -> Result<Vec<ArchivedFile>, ArchiveError> {
    let prefix = format!("{tenant}/");
    let objects: Vec<_> = store.list(Some(&StorePath::from(prefix.as_str()))).try_collect().await.map_err(store_failed)?;
    let mut files = Vec::new();
    for object in objects {
        let Some(key) = object.location.as_ref().strip_prefix(&prefix).map(str::to_owned) else { continue };
        if key.starts_with("exports/") {
            continue;
        }
        let target = dir.join(&key);
        std::fs::create_dir_all(target.parent().unwrap_or(dir))?;
        let mut out = tokio::fs::File::create(&target).await?;
        let mut body = store.get(&object.location).await.map_err(store_failed)?.into_stream();
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk.map_err(store_failed)?).await?;
        }
        out.flush().await?;
        files.push(ArchivedFile { key, size: object.size });
    }
    Ok(files)
}

/// Uploads the archive's files under `<tenant>/`.
async fn copy_files_in(store: &dyn ObjectStore, tenant: &TenantId, dir: &Path, files: &[ArchivedFile]) -> Result<(), ArchiveError> {
    for file in files {
        if file.key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(refused(format!("the archive names a file outside the tenant: {:?}", file.key)));
        }
        let upload = store.put_multipart(&StorePath::from(format!("{tenant}/{}", file.key))).await.map_err(store_failed)?;
        let mut writer = WriteMultipart::new(upload);
        let mut input = tokio::fs::File::open(dir.join(&file.key)).await?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = input.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(store_failed)?;
    }
    Ok(())
}

async fn remove_files(store: &dyn ObjectStore, tenant: &TenantId, files: &[ArchivedFile]) {
    for file in files {
        if let Err(e) = store.delete(&StorePath::from(format!("{tenant}/{}", file.key))).await {
            tracing::warn!(key = file.key, error = %e, "a failed import could not remove a file it had copied");
        }
    }
}

fn store_failed(e: object_store::Error) -> ArchiveError {
    ArchiveError::Io(std::io::Error::other(format!("files store: {e}")))
}

/// Unpacks the archive into `dir` (tar refuses entries outside it: `..`, absolute paths).
fn unpack(file: &Path, dir: &Path) -> std::io::Result<()> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(file)?);
    tar::Archive::new(gz).unpack(dir)
}
