//! Activities: insert (idempotent per source event), read, lock, update, delete, list and
//! count with filters.

use chrono::{DateTime, Utc};
use crm_client_communication::ActivityDetails;
use crm_tenant::{DbError, TenantTx};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::{Cursor, Dir, EmailVisibility, Keyed, activity_visible, fields};
use crate::domain::ActivityWrite;

const ACTIVITY_COLUMNS: &str = "id, type, subject, coalesce(description, ''), status, direction, outcome, duration_minutes, \
     due_date, completed_at, contact_id, company_id, deal_id, owner_id, custom_fields, needs_review, created_by, \
     created_at, updated_at, occurred_at";

fn activity_from(row: &Row) -> ActivityDetails {
    ActivityDetails {
        id: row.get(0),
        r#type: row.get(1),
        subject: row.get(2),
        description: row.get(3),
        status: row.get(4),
        direction: row.get(5),
        outcome: row.get(6),
        duration_minutes: row.get(7),
        scheduled_at: row.get(8),
        completed_at: row.get(9),
        contact_id: row.get(10),
        company_id: row.get(11),
        deal_id: row.get(12),
        owner_id: row.get(13),
        contact_name: None,
        company_name: None,
        deal_title: None,
        owner_name: None,
        custom_fields: fields(row.get(14)),
        needs_review: row.get(15),
        created_by: row.get(16),
        created_at: row.get(17),
        updated_at: row.get(18),
    }
}

/// Inserts an activity. With `source_event_id`, a second insert for the same event is a
/// no-op returning `None` (consumers' belt and braces next to `processed_events`).
pub async fn insert(
    tx: &TenantTx,
    a: &ActivityWrite,
    created_by: Option<i32>,
    source_event_id: Option<&str>,
) -> Result<Option<ActivityDetails>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO activities (type, subject, description, status, direction, outcome, duration_minutes, due_date, \
             completed_at, contact_id, company_id, deal_id, owner_id, custom_fields, needs_review, created_by, source_event_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (source_event_id) DO NOTHING RETURNING {ACTIVITY_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_opt(
            &stmt,
            &[
                &a.r#type,
                &a.subject,
                &a.description,
                &a.status,
                &a.direction,
                &a.outcome,
                &a.duration_minutes,
                &a.scheduled_at,
                &a.completed_at,
                &a.contact_id,
                &a.company_id,
                &a.deal_id,
                &a.owner_id,
                &Json(&a.custom_fields),
                &a.needs_review,
                &created_by,
                &source_event_id,
            ],
        )
        .await?;
    Ok(row.as_ref().map(activity_from))
}

/// The activity, if it exists and `vis` lets the caller see it (an email activity of
/// someone else is "not found").
pub async fn by_id(tx: &TenantTx, id: i32, vis: &EmailVisibility) -> Result<Option<ActivityDetails>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {ACTIVITY_COLUMNS} FROM activities a WHERE id = $1 AND {}", activity_visible("a", 2, 3))).await?;
    Ok(tx.query_opt(&stmt, &[&id, &vis.all, &vis.user]).await?.as_ref().map(activity_from))
}

/// Same, locking the row for the rest of the transaction (read, check, write).
pub async fn for_update(tx: &TenantTx, id: i32, vis: &EmailVisibility) -> Result<Option<ActivityDetails>, DbError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {ACTIVITY_COLUMNS} FROM activities a WHERE id = $1 AND {} FOR UPDATE", activity_visible("a", 2, 3)))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id, &vis.all, &vis.user]).await?.as_ref().map(activity_from))
}

pub async fn update(tx: &TenantTx, id: i32, a: &ActivityWrite) -> Result<ActivityDetails, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE activities SET type = $2, subject = $3, description = $4, status = $5, direction = $6, outcome = $7, \
             duration_minutes = $8, due_date = $9, completed_at = $10, contact_id = $11, company_id = $12, deal_id = $13, \
             owner_id = $14, custom_fields = $15, needs_review = $16, updated_at = now() \
             WHERE id = $1 RETURNING {ACTIVITY_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &id,
                &a.r#type,
                &a.subject,
                &a.description,
                &a.status,
                &a.direction,
                &a.outcome,
                &a.duration_minutes,
                &a.scheduled_at,
                &a.completed_at,
                &a.contact_id,
                &a.company_id,
                &a.deal_id,
                &a.owner_id,
                &Json(&a.custom_fields),
                &a.needs_review,
            ],
        )
        .await?;
    Ok(activity_from(&row))
}

pub async fn delete(tx: &TenantTx, id: i32) -> Result<bool, DbError> {
    let stmt = tx.prepare_cached("DELETE FROM activities WHERE id = $1").await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// Filters of `GET /activities` (all optional, combined with AND).
#[derive(Debug, Clone)]
pub struct ActivityFilter {
    pub r#type: Option<String>,
    pub status: Option<String>,
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub owner_id: Option<i32>,
    pub needs_review: Option<bool>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Whose emails the caller sees (always applied).
    pub visibility: EmailVisibility,
}

/// The filters and the email rule (`$10`, `$11`) over `activities a`.
fn activity_where() -> String {
    format!(
        "($1::text IS NULL OR type = $1) AND ($2::text IS NULL OR status = $2) \
         AND ($3::int IS NULL OR contact_id = $3) AND ($4::int IS NULL OR company_id = $4) \
         AND ($5::int IS NULL OR deal_id = $5) AND ($6::int IS NULL OR owner_id = $6) \
         AND ($7::bool IS NULL OR needs_review = $7) AND ($8::timestamptz IS NULL OR occurred_at >= $8) \
         AND ($9::timestamptz IS NULL OR occurred_at < $9) AND {}",
        activity_visible("a", 10, 11)
    )
}

/// Sortable columns of activities (`?sort=`), all non-null.
pub const ACTIVITY_SORTS: &[&str] = &["occurred_at", "created_at"];

pub async fn list(
    tx: &TenantTx,
    f: &ActivityFilter,
    sort: &'static str,
    dir: Dir,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<Keyed<ActivityDetails>>, DbError> {
    debug_assert!(ACTIVITY_SORTS.contains(&sort));
    let sql = format!(
        "SELECT {ACTIVITY_COLUMNS}, {sort} FROM activities a WHERE {w} \
         AND ($12::timestamptz IS NULL OR ({sort}, id) {cmp} ($12, $13)) \
         ORDER BY {sort} {d}, id {d} LIMIT $14",
        w = activity_where(),
        cmp = dir.cmp(),
        d = dir.sql()
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let (at, id) = (after.map(|c| c.at), after.map(|c| c.id));
    let rows = tx
        .query(
            &stmt,
            &[
                &f.r#type,
                &f.status,
                &f.contact_id,
                &f.company_id,
                &f.deal_id,
                &f.owner_id,
                &f.needs_review,
                &f.from,
                &f.to,
                &f.visibility.all,
                &f.visibility.user,
                &at,
                &id,
                &(limit + 1),
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| Keyed { row: activity_from(r), at: r.get(20) }).collect())
}

pub async fn count(tx: &TenantTx, f: &ActivityFilter) -> Result<i64, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT count(*) FROM activities a WHERE {}", activity_where())).await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &f.r#type,
                &f.status,
                &f.contact_id,
                &f.company_id,
                &f.deal_id,
                &f.owner_id,
                &f.needs_review,
                &f.from,
                &f.to,
                &f.visibility.all,
                &f.visibility.user,
            ],
        )
        .await?;
    Ok(row.get(0))
}
