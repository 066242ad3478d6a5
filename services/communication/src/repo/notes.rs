//! Notes (issue 16): insert, read, lock, update, delete, list and count with filters. The
//! names of the linked records and of the author are filled in by the service.

use chrono::{DateTime, Utc};
use crm_client_communication::Note;
use crm_tenant::{DbError, TenantTx};
use tokio_postgres::Row;

use super::{Cursor, Dir, Keyed};

const NOTE_COLUMNS: &str = "id, body, author_id, contact_id, company_id, deal_id, created_at, updated_at";

fn note_from(row: &Row) -> Note {
    Note {
        id: row.get(0),
        body: row.get(1),
        author_id: row.get(2),
        author_name: None,
        contact_id: row.get(3),
        contact_name: None,
        company_id: row.get(4),
        company_name: None,
        deal_id: row.get(5),
        deal_title: None,
        created_at: row.get(6),
        updated_at: row.get(7),
    }
}

/// A note as written (validated by the service: body 1..100000 characters, at least one link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteWrite {
    pub body: String,
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
}

pub async fn insert(tx: &TenantTx, n: &NoteWrite, author_id: i32) -> Result<Note, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO notes (body, author_id, contact_id, company_id, deal_id) VALUES ($1, $2, $3, $4, $5) RETURNING {NOTE_COLUMNS}"
        ))
        .await?;
    let row = tx.query_one(&stmt, &[&n.body, &author_id, &n.contact_id, &n.company_id, &n.deal_id]).await?;
    Ok(note_from(&row))
}

pub async fn by_id(tx: &TenantTx, id: i32) -> Result<Option<Note>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {NOTE_COLUMNS} FROM notes WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(note_from))
}

/// Same, locking the row for the rest of the transaction (read, check, write).
pub async fn for_update(tx: &TenantTx, id: i32) -> Result<Option<Note>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {NOTE_COLUMNS} FROM notes WHERE id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(note_from))
}

/// Writes body and links; `updated_at` moves at least one microsecond past the previous
/// value, so the ETag changes even when two writes fall in the same clock tick.
pub async fn update(tx: &TenantTx, id: i32, n: &NoteWrite) -> Result<Note, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE notes SET body = $2, contact_id = $3, company_id = $4, deal_id = $5, \
             updated_at = greatest(now(), updated_at + interval '1 microsecond') \
             WHERE id = $1 RETURNING {NOTE_COLUMNS}"
        ))
        .await?;
    let row = tx.query_one(&stmt, &[&id, &n.body, &n.contact_id, &n.company_id, &n.deal_id]).await?;
    Ok(note_from(&row))
}

pub async fn delete(tx: &TenantTx, id: i32) -> Result<bool, DbError> {
    let stmt = tx.prepare_cached("DELETE FROM notes WHERE id = $1").await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// Filters of `GET /notes` (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct NoteFilter {
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub author_id: Option<i32>,
}

const NOTE_WHERE: &str = "($1::int IS NULL OR contact_id = $1) AND ($2::int IS NULL OR company_id = $2) \
     AND ($3::int IS NULL OR deal_id = $3) AND ($4::int IS NULL OR author_id = $4)";

/// Sortable columns of notes (`?sort=`), both non-null.
pub const NOTE_SORTS: &[&str] = &["created_at", "updated_at"];

/// A page (`limit + 1` rows: the extra one tells whether there is a next page) after `after`.
pub async fn list(tx: &TenantTx, f: &NoteFilter, sort: &'static str, dir: Dir, after: Option<&Cursor>, limit: i64) -> Result<Vec<Keyed<Note>>, DbError> {
    debug_assert!(NOTE_SORTS.contains(&sort));
    let sql = format!(
        "SELECT {NOTE_COLUMNS}, {sort} FROM notes WHERE {NOTE_WHERE} \
         AND ($5::timestamptz IS NULL OR ({sort}, id) {cmp} ($5, $6)) \
         ORDER BY {sort} {d}, id {d} LIMIT $7",
        cmp = dir.cmp(),
        d = dir.sql()
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let (at, id): (Option<DateTime<Utc>>, Option<i32>) = (after.map(|c| c.at), after.map(|c| c.id));
    let rows = tx.query(&stmt, &[&f.contact_id, &f.company_id, &f.deal_id, &f.author_id, &at, &id, &(limit + 1)]).await?;
    Ok(rows.iter().map(|r| Keyed { row: note_from(r), at: r.get(8) }).collect())
}

pub async fn count(tx: &TenantTx, f: &NoteFilter) -> Result<i64, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT count(*) FROM notes WHERE {NOTE_WHERE}")).await?;
    Ok(tx.query_one(&stmt, &[&f.contact_id, &f.company_id, &f.deal_id, &f.author_id]).await?.get(0))
}
