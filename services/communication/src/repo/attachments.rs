//! Attachments (metadata rows; the bytes are in the object store) and the queue of objects
//! to remove from the store (`attachment_removals`).

use chrono::{DateTime, Utc};
use crm_client_communication::Attachment;
use crm_tenant::{DbError, PlatformTx, TenantTx};
use tokio_postgres::Row;

use super::{Dir, activity_visible};

const ATTACHMENT_COLUMNS: &str =
    "id, file_name, content_type, size_bytes, sha256, uploaded_by, contact_id, company_id, deal_id, activity_id, created_at, storage_key";

/// An attachment row: what the API shows, and where its bytes are.
#[derive(Debug, Clone)]
pub struct AttachmentRow {
    pub attachment: Attachment,
    /// `<tenant id>/<ulid>` in the object store.
    pub storage_key: String,
}

fn attachment_from(row: &Row) -> AttachmentRow {
    AttachmentRow {
        attachment: Attachment {
            id: row.get(0),
            file_name: row.get(1),
            content_type: row.get(2),
            size_bytes: row.get(3),
            sha256: row.get(4),
            uploaded_by: row.get(5),
            contact_id: row.get(6),
            company_id: row.get(7),
            deal_id: row.get(8),
            activity_id: row.get(9),
            created_at: row.get(10),
        },
        storage_key: row.get(11),
    }
}

/// A stored upload, validated, its links verified.
#[derive(Debug, Clone)]
pub struct AttachmentForCreate {
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub activity_id: Option<i32>,
}

/// Takes the object off the removal queue (it was queued, due after a grace period, before
/// the upload started) and inserts the row, in the caller's transaction. `None` when the
/// object was no longer queued: the removal loop took it (an upload slower than the grace),
/// so there may be no object to point at.
pub async fn insert(tx: &TenantTx, a: &AttachmentForCreate, uploaded_by: i32) -> Result<Option<AttachmentRow>, DbError> {
    let unqueue = tx.prepare_cached("DELETE FROM attachment_removals WHERE storage_key = $1").await?;
    if tx.execute(&unqueue, &[&a.storage_key]).await? != 1 {
        return Ok(None);
    }
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO attachments (file_name, content_type, size_bytes, sha256, storage_key, uploaded_by, contact_id, company_id, deal_id, activity_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {ATTACHMENT_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_one(
            &stmt,
            &[&a.file_name, &a.content_type, &a.size_bytes, &a.sha256, &a.storage_key, &uploaded_by, &a.contact_id, &a.company_id, &a.deal_id, &a.activity_id],
        )
        .await?;
    Ok(Some(attachment_from(&row)))
}

/// Which of these tenant ids exist (any status) in `platform.tenants`.
pub async fn existing_tenants(tx: &PlatformTx, ids: &[String]) -> Result<Vec<String>, DbError> {
    let rows = tx.query("SELECT id FROM tenants WHERE id = ANY($1)", &[&ids]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// SQL condition: the attachment `t` is visible: it is not linked to an activity the caller
/// may not see (an email outside the email visibility rule). `$all`/`$user` as in
/// [`activity_visible`].
fn attachment_visible(all: usize, user: usize) -> String {
    format!("NOT EXISTS (SELECT 1 FROM activities av2 WHERE av2.id = t.activity_id AND NOT {})", activity_visible("av2", all, user))
}

pub async fn by_id(tx: &TenantTx, id: i32, all: bool, user: Option<i32>) -> Result<Option<AttachmentRow>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments t WHERE id = $1 AND {}", attachment_visible(2, 3))).await?;
    Ok(tx.query_opt(&stmt, &[&id, &all, &user]).await?.as_ref().map(attachment_from))
}

/// Same, locking the row for the rest of the transaction.
pub async fn for_update(tx: &TenantTx, id: i32, all: bool, user: Option<i32>) -> Result<Option<AttachmentRow>, DbError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments t WHERE id = $1 AND {} FOR UPDATE", attachment_visible(2, 3)))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id, &all, &user]).await?.as_ref().map(attachment_from))
}

/// Whether the activity exists and the caller may see it (a link to it may be written).
pub async fn activity_exists(tx: &TenantTx, id: i32, all: bool, user: Option<i32>) -> Result<bool, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT EXISTS (SELECT 1 FROM activities a WHERE a.id = $1 AND {})", activity_visible("a", 2, 3))).await?;
    Ok(tx.query_one(&stmt, &[&id, &all, &user]).await?.get(0))
}

/// Deletes the row and queues its object for removal (due now), in the caller's
/// transaction. `false` when there was no such row.
pub async fn delete(tx: &TenantTx, id: i32) -> Result<bool, DbError> {
    let stmt = tx
        .prepare_cached(
            "WITH gone AS (DELETE FROM attachments WHERE id = $1 RETURNING storage_key) \
             INSERT INTO attachment_removals (storage_key, due_at) SELECT storage_key, CURRENT_TIMESTAMP FROM gone \
             ON CONFLICT (storage_key) DO UPDATE SET due_at = EXCLUDED.due_at",
        )
        .await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// List filters (all optional, combined with AND) and the caller's email visibility.
#[derive(Debug, Clone, Default)]
pub struct AttachmentFilter {
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub activity_id: Option<i32>,
    pub all: bool,
    pub user: Option<i32>,
}

fn attachment_where() -> String {
    format!(
        "($1::int IS NULL OR contact_id = $1) AND ($2::int IS NULL OR company_id = $2) AND ($3::int IS NULL OR deal_id = $3) \
         AND ($4::int IS NULL OR activity_id = $4) AND {}",
        attachment_visible(5, 6)
    )
}

/// A page (plus one row: the caller tells whether there is a next page) by `created_at`,
/// then id, in `dir`, after the keyset position `after`.
pub async fn list(tx: &TenantTx, f: &AttachmentFilter, dir: Dir, after: Option<(DateTime<Utc>, i32)>, limit: i64) -> Result<Vec<AttachmentRow>, DbError> {
    let sql = format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM attachments t WHERE {w} \
         AND ($7::timestamptz IS NULL OR (created_at, id) {cmp} ($7, $8)) ORDER BY created_at {d}, id {d} LIMIT $9",
        w = attachment_where(),
        cmp = dir.cmp(),
        d = dir.sql()
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let (at, id) = (after.map(|a| a.0), after.map(|a| a.1));
    let rows = tx.query(&stmt, &[&f.contact_id, &f.company_id, &f.deal_id, &f.activity_id, &f.all, &f.user, &at, &id, &(limit + 1)]).await?;
    Ok(rows.iter().map(attachment_from).collect())
}

pub async fn count(tx: &TenantTx, f: &AttachmentFilter) -> Result<i64, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT count(*) FROM attachments t WHERE {}", attachment_where())).await?;
    Ok(tx.query_one(&stmt, &[&f.contact_id, &f.company_id, &f.deal_id, &f.activity_id, &f.all, &f.user]).await?.get(0))
}

/// Queues `key` for removal after `grace` (an upload about to start: its own transaction
/// takes it off the queue when it commits; a crash or failure leaves it to the removal loop).
pub async fn queue_removal(tx: &TenantTx, key: &str, grace: std::time::Duration) -> Result<(), DbError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO attachment_removals (storage_key, due_at) VALUES ($1, CURRENT_TIMESTAMP + make_interval(secs => $2)) \
             ON CONFLICT (storage_key) DO UPDATE SET due_at = EXCLUDED.due_at",
        )
        .await?;
    tx.execute(&stmt, &[&key, &grace.as_secs_f64()]).await?;
    Ok(())
}

/// Up to `limit` due removals, locked (another instance skips them), oldest first.
pub async fn claim_due_removals(tx: &TenantTx, limit: i64) -> Result<Vec<String>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT storage_key FROM attachment_removals WHERE due_at <= CURRENT_TIMESTAMP \
             ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .await?;
    Ok(tx.query(&stmt, &[&limit]).await?.iter().map(|r| r.get(0)).collect())
}

/// The objects are gone: their removals are done. A key that an attachment row uses again
/// cannot be here (keys are never reused).
pub async fn removals_done(tx: &TenantTx, keys: &[String]) -> Result<u64, DbError> {
    let stmt = tx.prepare_cached("DELETE FROM attachment_removals WHERE storage_key = ANY($1)").await?;
    tx.execute(&stmt, &[&keys]).await
}

/// A removal failed: retried after a back-off growing with its attempts (1 min, 2, 4, ...,
/// at most a day).
pub async fn removal_failed(tx: &TenantTx, key: &str) -> Result<(), DbError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE attachment_removals SET attempts = attempts + 1, \
             due_at = CURRENT_TIMESTAMP + make_interval(secs => least(86400, 60 * power(2, least(attempts, 20))::float8)) \
             WHERE storage_key = $1",
        )
        .await?;
    tx.execute(&stmt, &[&key]).await?;
    Ok(())
}

/// Deletes the attachments about a contact being erased (its own, and those of the activities
/// about it that the erasure deletes: call before they are deleted), queueing their objects.
pub async fn erase_contact(tx: &TenantTx, id: i32) -> Result<u64, DbError> {
    let stmt = tx
        .prepare_cached(
            "WITH gone AS (DELETE FROM attachments WHERE contact_id = $1 \
                OR activity_id IN (SELECT a.id FROM activities a WHERE a.contact_id = $1 AND a.source_event_id IS NULL) \
                RETURNING storage_key) \
             INSERT INTO attachment_removals (storage_key, due_at) SELECT storage_key, CURRENT_TIMESTAMP FROM gone \
             ON CONFLICT (storage_key) DO UPDATE SET due_at = EXCLUDED.due_at",
        )
        .await?;
    tx.execute(&stmt, &[&id]).await
}

/// A company or deal deleted for good, or an activity deleted (`column` is `company_id`,
/// `deal_id` or `activity_id`, from code):
/// attachments linked to nothing else are deleted (their objects queued), the others lose the
/// link. Returns (deleted, unlinked).
pub async fn drop_record(tx: &TenantTx, column: &'static str, id: i32) -> Result<(u64, u64), DbError> {
    debug_assert!(["company_id", "deal_id", "activity_id"].contains(&column));
    let others: Vec<&str> = ["contact_id", "company_id", "deal_id", "activity_id"].into_iter().filter(|c| *c != column).collect();
    let alone = others.iter().map(|c| format!("{c} IS NULL")).collect::<Vec<_>>().join(" AND ");
    let delete = tx
        .prepare_cached(&format!(
            "WITH gone AS (DELETE FROM attachments WHERE {column} = $1 AND {alone} RETURNING storage_key) \
             INSERT INTO attachment_removals (storage_key, due_at) SELECT storage_key, CURRENT_TIMESTAMP FROM gone \
             ON CONFLICT (storage_key) DO UPDATE SET due_at = EXCLUDED.due_at"
        ))
        .await?;
    let unlink = tx.prepare_cached(&format!("UPDATE attachments SET {column} = NULL WHERE {column} = $1")).await?;
    let deleted = tx.execute(&delete, &[&id]).await?;
    Ok((deleted, tx.execute(&unlink, &[&id]).await?))
}
