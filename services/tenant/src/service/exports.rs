//! Tenant export jobs (issue 16): `POST /tenants/{id}/export` asks for an archive of every
//! record of the tenant ([`super::archive`]); a background worker builds it and stores it in
//! the exports object store; `GET /tenants/{id}/exports/{export_id}` tells how far it got and
//! `.../archive` downloads it until it expires.
//!
//! Durable and replica-safe: the job is a row in `platform.tenant_exports`, claimed with
//! `FOR UPDATE SKIP LOCKED` under a lease (a worker that dies mid-export leaves a row another
//! worker takes once the lease runs out); a failed attempt is retried, the third failure is
//! final and says why.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use crm_runtime::Task;
use crm_tenant::{TenantDb, TenantId};
use crm_web::{ApiError, Can, codes, perm};
use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use serde::Serialize;
use sha2::Digest;
use tokio::io::AsyncReadExt;
use utoipa::ToSchema;

use super::archive::write_archive;
use super::parse_tenant_id;
use crate::AppState;
use crate::repo::{self, ExportRow};

/// How long a claimed export may run before another worker may take it over.
const LEASE: Duration = Duration::from_secs(15 * 60);
/// Attempts before an export is `failed` for good.
const MAX_ATTEMPTS: i32 = 3;

/// An export job, as the API answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportInfo {
    /// Export id (ULID).
    pub id: String,
    pub tenant_id: String,
    /// `pending` (waiting for a worker), `running`, `done` (downloadable) or `failed`.
    pub status: String,
    /// The user who asked for it.
    pub requested_by: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Size of the archive in bytes (when done).
    pub size_bytes: Option<i64>,
    /// SHA-256 of the archive, hex (when done).
    pub sha256: Option<String>,
    /// When the archive is deleted (when done).
    pub expires_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Where to download the archive (when done).
    pub download_url: Option<String>,
}

impl From<ExportRow> for ExportInfo {
    fn from(row: ExportRow) -> Self {
        let download_url = (row.status == "done").then(|| format!("/api/v1/tenants/{}/exports/{}/archive", row.tenant_id, row.id));
        Self {
            id: row.id,
            tenant_id: row.tenant_id,
            status: row.status,
            requested_by: row.requested_by,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            expires_at: row.expires_at,
            error: row.error,
            download_url,
        }
    }
}

/// The export archives' store and the export worker's wake-up (a request for an export).
#[derive(Clone)]
pub struct Exports {
    pub store: Arc<dyn ObjectStore>,
    /// The files store (`ATTACHMENTS_URL`): its objects under the tenant's prefix go into the archive.
    pub files: Arc<dyn ObjectStore>,
    pub requested: Arc<tokio::sync::Notify>,
}

/// Where archives are kept: `EXPORTS_URL` (`file:///path` or a relative `file://` path,
/// default `file://.data/exports`; `s3://bucket/prefix` with the AWS_* variables of
/// `object_store`'s `AmazonS3Builder::from_env`).
pub fn open_store(url: &str) -> Result<Arc<dyn ObjectStore>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        std::fs::create_dir_all(path).map_err(|e| format!("cannot create {path}: {e}"))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(path).map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    } else if url.starts_with("s3://") {
        let store = object_store::aws::AmazonS3Builder::from_env().with_url(url).build().map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    } else {
        Err("must start with file:// or s3://".to_owned())
    }
}

fn own_tenant(can: &Can<perm::TenantWrite>, raw_id: &str) -> Result<TenantId, ApiError> {
    let id = parse_tenant_id(raw_id)?;
    if can.caller.user.tenant_id != id {
        return Err(ApiError::not_found("tenant"));
    }
    Ok(id)
}

/// `POST /tenants/{id}/export`: a new export job (202), or the tenant's unfinished one.
pub async fn start(state: &AppState, can: &Can<perm::TenantWrite>, raw_id: &str) -> Result<ExportInfo, ApiError> {
    let tenant = own_tenant(can, raw_id)?;
    let tx = state.db.platform().await?;
    let row = match repo::unfinished_export(&tx, &tenant).await? {
        Some(row) => row,
        None => repo::insert_export(&tx, &ulid::Ulid::generate().to_string(), &tenant, Some(can.caller.user.user_id)).await?,
    };
    tx.commit().await?;
    state.exports.requested.notify_one();
    Ok(row.into())
}

/// `GET /tenants/{id}/exports/{export_id}`.
pub async fn status(state: &AppState, can: &Can<perm::TenantWrite>, raw_id: &str, export_id: &str) -> Result<ExportInfo, ApiError> {
    Ok(find(state, can, raw_id, export_id).await?.into())
}

async fn find(state: &AppState, can: &Can<perm::TenantWrite>, raw_id: &str, export_id: &str) -> Result<ExportRow, ApiError> {
    let tenant = own_tenant(can, raw_id)?;
    let tx = state.db.platform().await?;
    let row = repo::export_by_id(&tx, &tenant, export_id).await?;
    tx.commit().await?;
    row.ok_or_else(|| ApiError::not_found("export"))
}

/// A finished archive to stream: its size, file name and bytes.
pub struct Download {
    pub size: u64,
    pub file_name: String,
    pub body: futures::stream::BoxStream<'static, Result<axum::body::Bytes, object_store::Error>>,
}

/// `GET /tenants/{id}/exports/{export_id}/archive`: 409 while the export is not done.
pub async fn download(state: &AppState, can: &Can<perm::TenantWrite>, raw_id: &str, export_id: &str) -> Result<Download, ApiError> {
    let row = find(state, can, raw_id, export_id).await?;
    let key = match (&row.status[..], &row.storage_key) {
        ("done", Some(key)) => key.clone(),
        _ => {
            return Err(ApiError::new(StatusCode::CONFLICT, codes::CONFLICT, format!("the export is {}; download it once it is done", row.status)));
        }
    };
    let got = state.exports.store.get(&StorePath::from(key)).await.map_err(ApiError::internal)?;
    let date = row.created_at.format("%Y%m%dT%H%M%SZ");
    Ok(Download { size: got.meta.size, file_name: format!("crm-tenant-{}-{date}.tar.gz", row.tenant_id.to_lowercase()), body: got.into_stream() })
}

/// The export worker: claims jobs when woken by a request and every 30 s (a job another
/// replica was asked for, one whose worker died), and removes expired archives.
pub fn worker_task(db: TenantDb, exports: Exports, keep_days: i32) -> Task {
    let Exports { store, files, requested: wake } = exports;
    let future = async move {
        loop {
            loop {
                match run_one(&db, store.as_ref(), files.as_ref(), keep_days).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "tenant export worker: cannot claim a job");
                        break;
                    }
                }
            }
            if let Err(e) = purge_expired(&db, store.as_ref()).await {
                tracing::warn!(error = %e, "tenant export worker: cannot purge expired archives");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    };
    Task { name: "tenant exports", future: Box::pin(future) }
}

/// Claims and builds one export; false when there was none to do.
pub async fn run_one(db: &TenantDb, store: &dyn ObjectStore, files: &dyn ObjectStore, keep_days: i32) -> Result<bool, ApiError> {
    let tx = db.platform().await?;
    let Some(job) = repo::claim_export(&tx, LEASE.as_secs_f64()).await? else { return Ok(false) };
    tx.commit().await?;
    let outcome = build_and_store(db, store, files, &job).await;
    let tx = db.platform().await?;
    match outcome {
        Ok((key, size, sha256)) => {
            repo::finish_export(&tx, &job.id, &key, size, &sha256, keep_days).await?;
            tracing::info!(export_id = job.id, tenant_id = job.tenant_id, size, "tenant export done");
        }
        Err(e) => {
            let last = job.attempts >= MAX_ATTEMPTS;
            tracing::warn!(export_id = job.id, tenant_id = job.tenant_id, attempt = job.attempts, last, error = %e, "tenant export failed");
            repo::fail_export(&tx, &job.id, &e, last).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Writes the archive to a temporary file, then into the store under
/// `<tenant id>/exports/<export id>.tar.gz`; (key, size, sha256).
async fn build_and_store(db: &TenantDb, store: &dyn ObjectStore, files: &dyn ObjectStore, job: &ExportRow) -> Result<(String, i64, String), String> {
    let tenant: TenantId = job.tenant_id.parse().map_err(|_| "invalid tenant id".to_owned())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("archive.tar.gz");
    write_archive(db, files, &tenant, &file).await.map_err(|e| e.to_string())?;
    let key = format!("{}/exports/{}.tar.gz", job.tenant_id, job.id);
    let upload = store.put_multipart(&StorePath::from(key.clone())).await.map_err(|e| e.to_string())?;
    let mut writer = WriteMultipart::new(upload);
    let mut hasher = sha2::Sha256::new();
    let mut input = tokio::fs::File::open(&file).await.map_err(|e| e.to_string())?;
    let (mut buf, mut size) = (vec![0u8; 256 * 1024], 0i64);
    loop {
        let n = input.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        writer.write(&buf[..n]);
        size += n as i64;
    }
    writer.finish().await.map_err(|e| e.to_string())?;
    let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((key, size, sha256))
}

async fn purge_expired(db: &TenantDb, store: &dyn ObjectStore) -> Result<(), ApiError> {
    let tx = db.platform().await?;
    let keys = repo::delete_expired_exports(&tx).await?;
    tx.commit().await?;
    for key in keys {
        match store.delete(&StorePath::from(key.clone())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(key, error = %e, "cannot delete an expired export archive"),
        }
    }
    Ok(())
}

/// Streams the archive body to the client (the handler's response body).
pub fn body_stream(download: Download) -> impl futures::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    download.body.map(|chunk| chunk.map_err(std::io::Error::other))
}
