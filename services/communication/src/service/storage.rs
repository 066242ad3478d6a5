//! The object store of attachments (issue 16), over the `object_store` crate: local files by
//! default (`file://<dir>`, works with no extra service), any S3-compatible store with
//! `s3://bucket/prefix` (credentials, region and endpoint from the standard `AWS_*`
//! variables, `AmazonS3Builder::from_env`). Keys are `<tenant id>/<attachment ulid>`, so a
//! tenant's objects are one prefix.
//!
//! Uploads are streamed through [`Upload`]: bytes are buffered up to one part
//! ([`PART_BYTES`]) and sent as a single `put` when the file fits in it, else as a multipart
//! upload with at most [`PARTS_IN_FLIGHT`] parts in flight; an aborted upload leaves no
//! object (the local store writes to a staging file renamed on completion, S3 aborts the
//! multipart upload).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use crm_tenant::TenantId;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

/// Bytes buffered before a multipart upload starts, and the size of each part (S3's minimum
/// part size is 5 MiB).
pub const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts of one upload sent at once (the memory of an upload is at most about this many
/// parts plus the one being filled).
pub const PARTS_IN_FLIGHT: usize = 2;

/// Where the objects are (`ATTACHMENTS_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `file://<dir>` (or a bare path): a directory, created on start. `file:///srv/files` is
    /// absolute, `file://.data/attachments` relative to the working directory.
    Local(PathBuf),
    /// `s3://bucket[/prefix]`.
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parses `ATTACHMENTS_URL`; the error is the rule it broke.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rule = "must be file://<directory> or s3://<bucket>[/<prefix>]";
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_matches('/');
            let valid_bucket = !bucket.is_empty() && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            let valid_prefix = prefix.split('/').all(|p| prefix.is_empty() || (!p.is_empty() && p != "." && p != ".."));
            return if valid_bucket && valid_prefix { Ok(Self::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() }) } else { Err(rule.to_owned()) };
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.is_empty() || url.contains("://") && !url.starts_with("file://") {
            return Err(rule.to_owned());
        }
        Ok(Self::Local(PathBuf::from(path)))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(dir) => write!(f, "file://{}", dir.display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A store that could not be opened or answered: logged by the caller, never shown to a
/// client beyond a generic 5xx.
#[derive(Debug, thiserror::Error)]
#[error("attachment store: {0}")]
pub struct StoreError(String);

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<StoreError> for crm_web::ApiError {
    fn from(e: StoreError) -> Self {
        crm_web::ApiError::internal(e)
    }
}

/// The attachments' object store. Cheap to clone; opened on first use (or at start by
/// [`Store::open`], which `Settings::from_env` calls so a bad store fails the start).
#[derive(Clone)]
pub struct Store {
    location: Location,
    inner: Arc<OnceCell<Arc<dyn ObjectStore>>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.location)
    }
}

impl Store {
    /// A store at `location`, not opened yet (no file system or network access).
    pub fn new(location: Location) -> Self {
        Self { location, inner: Arc::new(OnceCell::new()) }
    }

    /// Files under `dir` (created when first used).
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Self::new(Location::Local(dir.into()))
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Opens the store now: creates the local directory, or builds the S3 client from the
    /// `AWS_*` environment.
    pub async fn open(&self) -> Result<(), StoreError> {
        self.store().await.map(|_| ())
    }

    async fn store(&self) -> Result<&Arc<dyn ObjectStore>, StoreError> {
        self.inner.get_or_try_init(|| async { open(&self.location) }).await
    }

    /// The key of an attachment's object: `<tenant id>/<ulid>`.
    pub fn key(tenant: &TenantId, object: &str) -> String {
        format!("{tenant}/{object}")
    }

    /// Starts writing the object `key`; nothing exists under it until [`Upload::finish`].
    pub async fn upload(&self, key: &str) -> Result<Upload, StoreError> {
        let store = self.store().await?.clone();
        let writer = BufWriter::with_capacity(store, Path::from(key), PART_BYTES).with_max_concurrency(PARTS_IN_FLIGHT);
        Ok(Upload { writer: Some(writer) })
    }

    /// The object's bytes as a stream of chunks; `Ok(None)` when there is no such object.
    pub async fn read(&self, key: &str) -> Result<Option<BoxStream<'static, Result<Bytes, StoreError>>>, StoreError> {
        match self.store().await?.get(&Path::from(key)).await {
            Ok(got) => Ok(Some(got.into_stream().map_err(StoreError::from).boxed())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the object exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.store().await?.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the object; an object that is not there is removed already.
    pub async fn remove(&self, key: &str) -> Result<(), StoreError> {
        match self.store().await?.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant ids that have a prefix (top-level "directory") in the store.
    pub async fn tenant_prefixes(&self) -> Result<Vec<String>, StoreError> {
        let listed = self.store().await?.list_with_delimiter(None).await?;
        Ok(listed.common_prefixes.iter().map(|p| p.as_ref().to_owned()).collect())
    }

    /// Removes every object under `prefix/` (a deleted tenant's); returns how many.
    pub async fn remove_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let store = self.store().await?.clone();
        let prefix = Path::from(prefix);
        let locations = store.list(Some(&prefix)).map_ok(|meta| meta.location).boxed();
        let removed = store.delete_stream(locations).try_fold(0u64, |n, _| async move { Ok(n + 1) }).await?;
        // A local directory stays behind when empty (an aborted upload's, say): removed too,
        // so the prefix is not found again. Anything still in it stays.
        if let Location::Local(dir) = &self.location {
            let _ = std::fs::remove_dir(dir.join(prefix.as_ref()));
        }
        Ok(removed)
    }
}

fn open(location: &Location) -> Result<Arc<dyn ObjectStore>, StoreError> {
    match location {
        Location::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
            let fs = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
            Ok(Arc::new(fs))
        }
        Location::S3 { bucket, prefix } => {
            let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build()?;
            if prefix.is_empty() { Ok(Arc::new(s3)) } else { Ok(Arc::new(PrefixStore::new(s3, prefix.as_str()))) }
        }
    }
}

/// An object being written. Drop without [`Upload::finish`] leaves nothing behind on the local
/// store; call [`Upload::abort`] so an S3 multipart upload is aborted too.
pub struct Upload {
    writer: Option<BufWriter>,
}

impl Upload {
    /// Appends a chunk (waits while [`PARTS_IN_FLIGHT`] parts are being sent).
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let writer = self.writer.as_mut().ok_or_else(|| StoreError("upload already finished".into()))?;
        writer.put(chunk).await?;
        Ok(())
    }

    /// Completes the object: it exists from now on.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        let mut writer = self.writer.take().ok_or_else(|| StoreError("upload already finished".into()))?;
        writer.shutdown().await.map_err(|e| StoreError(e.to_string()))
    }

    /// Abandons the upload: nothing is left under the key.
    pub async fn abort(mut self) {
        if let Some(mut writer) = self.writer.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(error = %e, "aborting an attachment upload failed (the store cleans up unfinished uploads)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(Location::parse("file:///srv/files"), Ok(Location::Local("/srv/files".into())));
        assert_eq!(Location::parse("file://.data/attachments"), Ok(Location::Local(".data/attachments".into())));
        assert_eq!(Location::parse("./data"), Ok(Location::Local("./data".into())));
        assert_eq!(Location::parse("s3://crm-files"), Ok(Location::S3 { bucket: "crm-files".into(), prefix: String::new() }));
        assert_eq!(Location::parse("s3://crm-files/prod/eu/"), Ok(Location::S3 { bucket: "crm-files".into(), prefix: "prod/eu".into() }));
        for bad in ["s3://", "s3:///x", "s3://b/../x", "http://example.com/x", "file://", "gs://bucket"] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing_and_a_finished_one_reads_back() {
        let dir = std::env::temp_dir().join(format!("crm-store-unit-{}", ulid::Ulid::generate()));
        let store = Store::local(&dir);
        let mut upload = store.upload("t/aborted").await.unwrap();
        upload.write(Bytes::from_static(b"half")).await.unwrap();
        upload.abort().await;
        assert!(!store.exists("t/aborted").await.unwrap());

        let mut upload = store.upload("t/done").await.unwrap();
        for _ in 0..3 {
            upload.write(Bytes::from(vec![7u8; PART_BYTES / 2 + 1])).await.unwrap();
        }
        upload.finish().await.unwrap();
        let bytes: Vec<Bytes> = store.read("t/done").await.unwrap().expect("object").try_collect().await.unwrap();
        assert_eq!(bytes.iter().map(|b| b.len()).sum::<usize>(), 3 * (PART_BYTES / 2 + 1));
        assert_eq!(store.tenant_prefixes().await.unwrap(), vec!["t".to_owned()]);
        assert_eq!(store.remove_prefix("t").await.unwrap(), 1);
        assert!(store.read("t/done").await.unwrap().is_none());
        store.remove("t/done").await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
