//! Attachments (issue 16): files about a contact, a company, a deal and/or an activity.
//!
//! * Upload ([`upload`]): the multipart body is streamed to the object store chunk by chunk
//!   (never whole in memory), its size checked as it comes (413 beyond
//!   `ATTACHMENT_MAX_BYTES`), its SHA-256 computed and its content type sniffed from the first
//!   bytes (the client's `Content-Type` is ignored). Before the first byte is stored the key is
//!   queued for removal after [`UPLOAD_GRACE`]; the transaction that inserts the row takes it
//!   off the queue. So a failed, refused or interrupted upload leaves no row, and its object
//!   is removed at once or, after a crash, by the removal loop.
//! * Delete, and the erasure of a contact / deletion for good of a company, deal or activity
//!   (`references`): the row is deleted and its object queued for removal in the same
//!   transaction; the object is removed after the commit (at once for a request, by the
//!   removal loop [`run_removals`] for events and retries). Never a row without its object.
//! * A deleted tenant's schema is dropped with its rows; its objects (the prefix
//!   `<tenant id>/`) are removed by the same loop ([`remove_deleted_tenants`]).
//!
//! Permissions are those of activities (files are part of the record of a customer's
//! activity): `activities: read` to list and download, `write` to upload, `delete` to delete
//! (sales reps: only what they uploaded; managers and admins: any).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use crm_client_communication::Attachment;
use crm_client_communication::subjects::{ATTACHMENT_CREATED, ATTACHMENT_DELETED};
use crm_events::publish;
use crm_tenant::TenantId;
use crm_web::pagination::SortDir;
use crm_web::{ApiError, Can, ETag, FieldErrors, IfMatch, Page, QueryParams, codes, parse_limit, perm};
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};

use super::scheduler::TenantSource;
use super::storage::{Store, StoreError};
use super::{email_visibility, sort_and_cursor, sort_key};
use crate::AppState;
use crate::enrich::{RefFields, Refs};
use crate::repo::Cursor;
use crate::repo::attachments::{self as repo, AttachmentFilter, AttachmentForCreate, AttachmentRow};

/// Default `ATTACHMENT_MAX_BYTES`: 25 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 25 * 1024 * 1024;
/// How long an upload may take before its object counts as abandoned (removed by the loop).
pub const UPLOAD_GRACE: Duration = Duration::from_secs(3600);
/// The most bytes of a file name (UTF-8).
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// Bytes looked at to sniff the content type.
const SNIFF_BYTES: usize = 8192;
/// Removals done per tenant and visit of the loop (the rest wait for the next one).
const REMOVALS_PER_VISIT: i64 = 100;
/// The link fields of an upload, in the order of the error messages.
const LINKS: [&str; 4] = ["contact_id", "company_id", "deal_id", "activity_id"];

/// Settings of attachments: `ATTACHMENTS_URL` (the store), `ATTACHMENT_MAX_BYTES`,
/// `ATTACHMENT_SWEEP_SECONDS` (the pace of the removal loop).
#[derive(Debug, Clone)]
pub struct AttachmentSettings {
    pub store: Store,
    /// Largest file accepted, in bytes (413 `PAYLOAD_TOO_LARGE` beyond).
    pub max_bytes: u64,
    /// Time between two visits of the removal loop.
    pub sweep: Duration,
}

impl Default for AttachmentSettings {
    /// Files under `.data/attachments` (relative to the working directory), 25 MiB, a visit a
    /// minute.
    fn default() -> Self {
        Self { store: Store::local(".data/attachments"), max_bytes: DEFAULT_MAX_BYTES, sweep: Duration::from_secs(60) }
    }
}

/// Who uploads, and what they may see (checked again inside the upload task).
struct Uploader {
    tenant: TenantId,
    user: i32,
    ctx: crm_client_core::CallContext,
    all: bool,
    visible_to: Option<i32>,
}

/// `POST /attachments`: stores the file, then writes the row (see the module doc). The
/// upload runs in its own task so that a client going away mid-upload still leaves nothing
/// behind.
pub async fn upload(state: &AppState, can: &Can<perm::ActivitiesWrite>, multipart: Multipart) -> Result<Attachment, ApiError> {
    let vis = email_visibility(can);
    let who = Uploader { tenant: can.tenant_id, user: can.user_id, ctx: can.ctx.clone(), all: vis.all, visible_to: vis.user };
    let state = state.clone();
    let request_id = crm_web::request_id::current_or_unknown();
    let task = async move {
        let key = Store::key(&who.tenant, &ulid::Ulid::generate().to_string().to_ascii_lowercase());
        {
            let tx = state.db.tenant(&who.tenant).await?;
            repo::queue_removal(&tx, &key, UPLOAD_GRACE).await?;
            tx.commit().await?;
        }
        match receive(&state, &who, &key, multipart).await {
            Ok(row) => Ok(row.attachment),
            Err(e) => {
                remove_now(&state, &who.tenant, &key).await;
                Err(e)
            }
        }
    };
    // The request id follows the work into the task (logs, the event's `request_id`).
    tokio::spawn(crm_web::request_id::scope(request_id, task)).await.map_err(ApiError::internal)?
}

/// A file received and stored, not yet recorded.
struct Stored {
    size: u64,
    sha256: String,
    content_type: String,
}

async fn receive(state: &AppState, who: &Uploader, key: &str, mut multipart: Multipart) -> Result<AttachmentRow, ApiError> {
    let store = &state.settings.attachments.store;
    let mut links: [Option<i32>; 4] = [None; 4];
    let mut file: Option<(String, Stored)> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if file.is_some() {
                return Err(ApiError::validation([("file", "one file per upload")]));
            }
            let file_name = check_file_name(field.file_name()).map_err(|m| ApiError::validation([("file", m)]))?;
            let stored = stream_to_store(store, key, &mut field, state.settings.attachments.max_bytes).await?;
            file = Some((file_name, stored));
        } else if let Some(i) = LINKS.iter().position(|l| *l == name) {
            let text = small_text(&mut field).await?;
            let id = text.trim().parse::<i32>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::validation([(LINKS[i], "must be a positive integer id")]))?;
            if links[i].replace(id).is_some() {
                return Err(ApiError::validation([(LINKS[i], "given more than once")]));
            }
        } else {
            let shown: String = name.chars().take(64).collect();
            let shown = if shown.is_empty() { "(unnamed)".to_owned() } else { shown };
            return Err(ApiError::validation([(shown, "unknown field: expected file, contact_id, company_id, deal_id or activity_id")]));
        }
    }
    let Some((file_name, stored)) = file else {
        return Err(ApiError::validation([("file", "required: the file to upload")]));
    };
    let [contact_id, company_id, deal_id, activity_id] = links;
    if links.iter().all(Option::is_none) {
        return Err(ApiError::validation([("contact_id", "one of contact_id, company_id, deal_id or activity_id is required")]));
    }

    // Links to other services' records are checked there; a link that cannot be checked is
    // not written (nothing flags an attachment for review).
    let refs = Refs { contacts: contact_id.into_iter().collect(), companies: company_id.into_iter().collect(), deals: deal_id.into_iter().collect(), ..Refs::default() };
    let fields = RefFields { contact: Some("contact_id"), company: Some("company_id"), deal: Some("deal_id"), user: None };
    if state.clients.verify(&who.ctx, &refs, &fields).await? {
        return Err(ApiError::unavailable("the linked records could not be checked now; try again"));
    }

    let tx = state.db.tenant(&who.tenant).await?;
    super::references::refuse_gone(&tx, contact_id, company_id, deal_id).await?;
    if let Some(activity) = activity_id
        && !repo::activity_exists(&tx, activity, who.all, who.visible_to).await?
    {
        let message = format!("activity {activity} does not exist");
        return Err(ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, message.clone()).with_details(serde_json::json!({"fields": {"activity_id": message}})));
    }
    let create = AttachmentForCreate {
        file_name,
        content_type: stored.content_type,
        size_bytes: i64::try_from(stored.size).map_err(ApiError::internal)?,
        sha256: stored.sha256,
        storage_key: key.to_owned(),
        contact_id,
        company_id,
        deal_id,
        activity_id,
    };
    let row = repo::insert(&tx, &create, who.user)
        .await?
        .ok_or_else(|| ApiError::unavailable("the upload took too long and was abandoned; try again"))?;
    publish(&tx, Some(who.user), ATTACHMENT_CREATED, &row.attachment).await?;
    tx.commit().await?;
    Ok(row)
}

/// The file name as uploaded: 1-255 bytes, no path separators, no control characters, not
/// `.` or `..` (it is offered back as the download's file name).
pub fn check_file_name(name: Option<&str>) -> Result<String, &'static str> {
    let name = name.map(str::trim).filter(|n| !n.is_empty()).ok_or("the file part needs a filename")?;
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err("the file name must be at most 255 bytes");
    }
    if name.chars().any(|c| c == '/' || c == '\\' || c.is_control()) || name == "." || name == ".." {
        return Err("the file name must not contain path separators or control characters");
    }
    Ok(name.to_owned())
}

/// A link field's value: a few bytes of text (more is refused, not read).
async fn small_text(field: &mut Field<'_>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut text = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        text.extend_from_slice(&chunk);
        if text.len() > 32 {
            return Err(ApiError::validation([(name, "must be a positive integer id")]));
        }
    }
    String::from_utf8(text).map_err(|_| ApiError::validation([(name, "must be a positive integer id")]))
}

/// Streams the file part into the store under `key`, hashing and sniffing as it goes.
async fn stream_to_store(store: &Store, key: &str, field: &mut Field<'_>, max: u64) -> Result<Stored, ApiError> {
    let mut upload = store.upload(key).await?;
    let mut sniffer = Sniffer::default();
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    loop {
        let chunk: Bytes = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                upload.abort().await;
                return Err(multipart_error(e));
            }
        };
        size += chunk.len() as u64;
        if size > max {
            upload.abort().await;
            return Err(too_large(max));
        }
        hasher.update(&chunk);
        sniffer.feed(&chunk);
        if let Err(e) = upload.write(chunk).await {
            upload.abort().await;
            return Err(e.into());
        }
    }
    upload.finish().await?;
    Ok(Stored { size, sha256: hex(&hasher.finalize()), content_type: sniffer.content_type() })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn too_large(max: u64) -> ApiError {
    ApiError::payload_too_large().with_details(serde_json::json!({"fields": {"file": format!("must be at most {max} bytes")}, "max_bytes": max}))
}

/// A body the multipart parser refuses: 413 when over the route's body limit, else 400 with
/// the parser's message (meant for clients).
fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large()
    } else {
        ApiError::bad_request(format!("invalid multipart body: {}", e.body_text()))
    }
}

/// The content type of a stream of bytes, from its first [`SNIFF_BYTES`] (magic numbers,
/// the `infer` crate) or, failing that, `text/plain` when the whole content is valid UTF-8
/// without NUL bytes, else `application/octet-stream`.
#[derive(Debug)]
pub struct Sniffer {
    head: Vec<u8>,
    /// Still possibly text: valid UTF-8 so far, no NUL.
    text: bool,
    /// The start of a UTF-8 sequence cut by the end of the last chunk.
    pending: Vec<u8>,
    empty: bool,
}

impl Default for Sniffer {
    fn default() -> Self {
        Self { head: Vec::with_capacity(SNIFF_BYTES), text: true, pending: Vec::new(), empty: true }
    }
}

impl Sniffer {
    pub fn feed(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        self.empty = false;
        if self.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        if !self.text {
            return;
        }
        if chunk.contains(&0) {
            self.text = false;
            return;
        }
        let joined;
        let bytes = if self.pending.is_empty() {
            chunk
        } else {
            joined = [std::mem::take(&mut self.pending).as_slice(), chunk].concat();
            joined.as_slice()
        };
        match std::str::from_utf8(bytes) {
            Ok(_) => {}
            // Cut in the middle of a character: the rest comes with the next chunk.
            Err(e) if e.error_len().is_none() => self.pending = bytes[e.valid_up_to()..].to_vec(),
            Err(_) => self.text = false,
        }
    }

    pub fn content_type(&self) -> String {
        if let Some(kind) = infer::get(&self.head) {
            return kind.mime_type().to_owned();
        }
        if self.text && self.pending.is_empty() && !self.empty { "text/plain".to_owned() } else { "application/octet-stream".to_owned() }
    }
}

/// `GET /attachments`: by `created_at` (newest first by default; `sort=created_at` for the
/// oldest first), filtered by the links given.
pub async fn list(state: &AppState, can: &Can<perm::ActivitiesRead>, params: &QueryParams) -> Result<Page<Attachment>, ApiError> {
    let mut errors = FieldErrors::new();
    let vis = email_visibility(can);
    let filter = AttachmentFilter {
        contact_id: params.id(&mut errors, "contact_id"),
        company_id: params.id(&mut errors, "company_id"),
        deal_id: params.id(&mut errors, "deal_id"),
        activity_id: params.id(&mut errors, "activity_id"),
        all: vis.all,
        user: vis.user,
    };
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|e| {
        errors.add("limit", e.details().and_then(|d| d["fields"]["limit"].as_str()).unwrap_or("invalid").to_owned());
        0
    });
    let (sort, dir, after) = sort_and_cursor(params, &mut errors, &state.cursors, &["created_at"], ("created_at", SortDir::Desc))?;
    errors.into_result()?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let rows = repo::list(&tx, &filter, dir, after.map(|c| (c.at, c.id)), limit).await?;
    let total = if params.count() { Some(repo::count(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    let key = sort_key(sort, dir);
    let page = Page::from_overfetch(rows, limit, total, |last| {
        state.cursors.encode(&Cursor { sort: key, at: last.attachment.created_at, id: last.attachment.id })
    });
    Ok(Page { data: page.data.into_iter().map(|r| r.attachment).collect(), pagination: page.pagination })
}

async fn visible(state: &AppState, tenant: &TenantId, vis: crate::repo::EmailVisibility, id: i32) -> Result<AttachmentRow, ApiError> {
    let tx = state.db.tenant(tenant).await?;
    let row = repo::by_id(&tx, id, vis.all, vis.user).await?.ok_or_else(|| ApiError::not_found("attachment"))?;
    tx.commit().await?;
    Ok(row)
}

/// `GET /attachments/{id}`.
pub async fn get(state: &AppState, can: &Can<perm::ActivitiesRead>, id: i32) -> Result<Attachment, ApiError> {
    Ok(visible(state, &can.tenant_id, email_visibility(can), id).await?.attachment)
}

/// `GET /attachments/{id}/content`: the metadata and the bytes as a stream.
pub async fn content(state: &AppState, can: &Can<perm::ActivitiesRead>, id: i32) -> Result<(Attachment, BoxStream<'static, Result<Bytes, StoreError>>), ApiError> {
    let row = visible(state, &can.tenant_id, email_visibility(can), id).await?;
    match state.settings.attachments.store.read(&row.storage_key).await? {
        Some(bytes) => Ok((row.attachment, bytes)),
        // Never expected (rows go before their objects): a fault of the store to look into.
        None => Err(ApiError::internal(format!("the object of attachment {id} is missing from the store"))),
    }
}

/// `DELETE /attachments/{id}`: the uploader, or anyone whose role deletes every activity
/// (managers, admins).
pub async fn delete(state: &AppState, can: &Can<perm::ActivitiesDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let vis = email_visibility(can);
    let tx = state.db.tenant(&can.tenant_id).await?;
    let row = repo::for_update(&tx, id, vis.all, vis.user).await?.ok_or_else(|| ApiError::not_found("attachment"))?;
    if_match.check(&ETag::of(row.attachment.created_at))?;
    if !can.reaches([Some(row.attachment.uploaded_by)]) {
        return Err(ApiError::forbidden("a sales rep may only delete the files it uploaded"));
    }
    repo::delete(&tx, id).await?;
    publish(&tx, Some(can.user_id), ATTACHMENT_DELETED, &row.attachment).await?;
    tx.commit().await?;
    remove_now(state, &can.tenant_id, &row.storage_key).await;
    Ok(())
}

/// Removes a queued object now and takes it off the queue; a failure is logged and left to
/// the removal loop.
async fn remove_now(state: &AppState, tenant: &TenantId, key: &str) {
    if let Err(e) = state.settings.attachments.store.remove(key).await {
        tracing::warn!(error = %e, key, "removing an attachment's object failed; the removal loop retries");
        return;
    }
    let done = async {
        let tx = state.db.tenant(tenant).await?;
        repo::removals_done(&tx, &[key.to_owned()]).await?;
        tx.commit().await
    };
    if let Err(e) = done.await {
        tracing::warn!(error = %e, key, "an attachment's object was removed but not taken off the queue; the loop does it again");
    }
}

/// One visit of a tenant by the removal loop: removes up to a batch of due objects, takes
/// the removed ones off the queue and delays the others (back-off). Returns how many were
/// removed.
pub async fn remove_due(state: &AppState, tenant: &TenantId) -> Result<u64, crm_tenant::DbError> {
    let store = &state.settings.attachments.store;
    let tx = state.db.tenant(tenant).await?;
    let due = repo::claim_due_removals(&tx, REMOVALS_PER_VISIT).await?;
    let mut done = Vec::with_capacity(due.len());
    for key in due {
        match store.remove(&key).await {
            Ok(()) => done.push(key),
            Err(e) => {
                tracing::warn!(error = %e, key, "removing an attachment's object failed; retried later");
                repo::removal_failed(&tx, &key).await?;
            }
        }
    }
    let removed = repo::removals_done(&tx, &done).await?;
    tx.commit().await?;
    Ok(removed)
}

/// Removes the objects of tenants that no longer exist (their schema, rows and queue were
/// dropped with them). Only prefixes that are tenant ids absent from `platform.tenants` are
/// touched. Returns how many objects were removed.
pub async fn remove_deleted_tenants(state: &AppState) -> Result<u64, ApiError> {
    let store = &state.settings.attachments.store;
    // Keys are `<TenantId as Display>/...`: a prefix that does not print back the same is
    // not a tenant's and is left alone.
    let prefixes: Vec<String> = store.tenant_prefixes().await?.into_iter().filter(|p| TenantId::parse(p).is_ok_and(|id| id.to_string() == *p)).collect();
    if prefixes.is_empty() {
        return Ok(0);
    }
    let tx = state.db.platform().await?;
    let existing = repo::existing_tenants(&tx, &prefixes).await?;
    tx.commit().await?;
    let mut removed = 0;
    for prefix in prefixes.iter().filter(|p| !existing.contains(p)) {
        let n = store.remove_prefix(prefix).await?;
        tracing::info!(tenant_id = %prefix, objects = n, "a deleted tenant's attachments were removed");
        removed += n;
    }
    Ok(removed)
}

/// The removal loop: every `ATTACHMENT_SWEEP_SECONDS`, due removals of each tenant of
/// `source`, then the objects of deleted tenants. Runs until `shutdown` resolves.
pub async fn run_removals(state: AppState, source: Arc<dyn TenantSource>, shutdown: impl std::future::Future<Output = ()> + Send) {
    let pace = state.settings.attachments.sweep;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(pace) => {}
        }
        match source.tenants().await {
            Ok(tenants) => {
                for tenant in tenants {
                    if let Err(e) = remove_due(&state, &tenant).await {
                        tracing::warn!(error = %e, tenant_id = %tenant, "attachment removals failed; retried next visit");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "attachment removals: listing tenants failed"),
        }
        if let Err(e) = remove_deleted_tenants(&state).await {
            tracing::warn!(error = ?e, "removing deleted tenants' attachments failed; retried next visit");
        }
    }
}

/// The `Content-Disposition` of a download: `attachment` with an ASCII fallback `filename`
/// (anything outside printable ASCII, quotes and backslashes replaced by `_`) and the exact
/// name as `filename*=UTF-8''...` (RFC 6266, percent-encoding of RFC 5987 / 8187).
pub fn content_disposition(file_name: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    // attr-char of RFC 8187: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
    const ATTR: &AsciiSet = &NON_ALPHANUMERIC.remove(b'!').remove(b'#').remove(b'$').remove(b'&').remove(b'+').remove(b'-').remove(b'.').remove(b'^').remove(b'_').remove(b'`').remove(b'|').remove(b'~');
    let fallback: String = file_name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{}", utf8_percent_encode(file_name, ATTR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(chunks: &[&[u8]]) -> String {
        let mut s = Sniffer::default();
        for c in chunks {
            s.feed(c);
        }
        s.content_type()
    }

    #[test]
    fn content_types_come_from_the_bytes() {
        assert_eq!(sniff(&[b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"]), "image/png");
        assert_eq!(sniff(&[b"%PDF-1.7\n"]), "application/pdf");
        assert_eq!(sniff(&[b"hello ", "w\u{e9}rld".as_bytes()]), "text/plain");
        // A character cut between two chunks is still text.
        let e = "\u{e9}".as_bytes();
        assert_eq!(sniff(&[b"caf", &e[..1], &e[1..]]), "text/plain");
        assert_eq!(sniff(&[b"caf", &e[..1]]), "application/octet-stream");
        assert_eq!(sniff(&[b"a\0b"]), "application/octet-stream");
        assert_eq!(sniff(&[b"\xff\xfe\xfd"]), "application/octet-stream");
        assert_eq!(sniff(&[]), "application/octet-stream");
    }

    #[test]
    fn file_names_are_checked() {
        assert_eq!(check_file_name(Some(" report Q1.pdf ")), Ok("report Q1.pdf".to_owned()));
        assert_eq!(check_file_name(Some("résumé 履歴書.txt")), Ok("résumé 履歴書.txt".to_owned()));
        for bad in [None, Some(""), Some("a/b"), Some("a\\b"), Some("a\nb"), Some("a\u{7f}"), Some(".."), Some(&*"x".repeat(256))] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name(Some(&"é".repeat(127))).is_ok());
        assert!(check_file_name(Some(&"é".repeat(128))).is_err());
    }

    #[test]
    fn content_disposition_is_safe_for_any_name() {
        assert_eq!(content_disposition("report.pdf"), "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
        assert_eq!(
            content_disposition("naïve \"q\"; x.txt"),
            "attachment; filename=\"na_ve _q_; x.txt\"; filename*=UTF-8''na%C3%AFve%20%22q%22%3B%20x.txt"
        );
    }
}
