//! Tasks: insert (idempotent per source event), read, lock, update, delete, list and count
//! with filters. Every write keeps the task's reminder in step (`super::reminders::sync`).

use chrono::{DateTime, Utc};
use crm_client_communication::{TaskDetails, TaskInfo};
use crm_tenant::{DbError, TenantTx};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::{Cursor, Dir, Keyed, fields};
use crate::domain::TaskWrite;

/// The columns every task read and write returns. `is_overdue` is computed in [`task_from`],
/// not here: Citus refuses a non-IMMUTABLE function such as `now()` in `RETURNING` (issue 18).
const TASK_COLUMNS: &str = "id, title, coalesce(description, ''), type, status, priority, due_date, assigned_to, contact_id, \
     deal_id, created_at, reminder_at, completed_at, custom_fields, created_by, updated_at, due_key";

/// The reminder's status, a column of the reads (not of `RETURNING`: writes take it from
/// `super::reminders::sync`).
const REMINDER_STATUS: &str = "(SELECT r.status FROM task_reminders r WHERE r.task_id = tasks.id) AS reminder_status";

/// Open (pending or in progress) and past its due date at `now`: the same rule as the
/// `overdue` list filter.
fn is_overdue(status: &str, due_date: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    matches!(status, "pending" | "in_progress") && due_date.is_some_and(|due| due < now)
}

fn task_from(row: &Row) -> TaskDetails {
    let status: String = row.get(4);
    let due_date: Option<DateTime<Utc>> = row.get(6);
    let overdue = is_overdue(&status, due_date, Utc::now());
    TaskDetails {
        task: TaskInfo {
            id: row.get(0),
            title: row.get(1),
            description: row.get(2),
            r#type: row.get(3),
            status,
            priority: row.get(5),
            due_date,
            assigned_to: row.get(7),
            contact_id: row.get(8),
            deal_id: row.get(9),
            created_at: row.get(10),
        },
        reminder_at: row.get(11),
        reminder_status: row.try_get("reminder_status").ok().flatten(),
        completed_at: row.get(12),
        is_overdue: overdue,
        custom_fields: fields(row.get(13)),
        created_by: row.get(14),
        updated_at: row.get(15),
    }
}

pub async fn insert(tx: &TenantTx, t: &TaskWrite, created_by: Option<i32>, source_event_id: Option<&str>) -> Result<Option<TaskDetails>, DbError> {
    insert_with(tx, t, created_by, source_event_id, "ON CONFLICT (source_event_id) DO NOTHING").await
}

/// As [`insert`], but `None` on ANY unique conflict (also "one open inactive-lead follow-up
/// per contact", `tasks_one_open_inactive_follow_up`).
pub async fn insert_unless_open(tx: &TenantTx, t: &TaskWrite, source_event_id: &str) -> Result<Option<TaskDetails>, DbError> {
    insert_with(tx, t, None, Some(source_event_id), "ON CONFLICT DO NOTHING").await
}

async fn insert_with(tx: &TenantTx, t: &TaskWrite, created_by: Option<i32>, source_event_id: Option<&str>, on_conflict: &str) -> Result<Option<TaskDetails>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO tasks (title, description, type, status, priority, due_date, reminder_at, assigned_to, contact_id, \
             deal_id, completed_at, custom_fields, created_by, source_event_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             {on_conflict} RETURNING {TASK_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_opt(
            &stmt,
            &[
                &t.title,
                &t.description,
                &t.r#type,
                &t.status,
                &t.priority,
                &t.due_date,
                &t.reminder_at,
                &t.assigned_to,
                &t.contact_id,
                &t.deal_id,
                &t.completed_at,
                &Json(&t.custom_fields),
                &created_by,
                &source_event_id,
            ],
        )
        .await?;
    let mut task = row.as_ref().map(task_from);
    if let Some(task) = &mut task {
        task.reminder_status = super::reminders::sync(tx, task).await?;
    }
    Ok(task)
}

pub async fn by_id(tx: &TenantTx, id: i32) -> Result<Option<TaskDetails>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {TASK_COLUMNS}, {REMINDER_STATUS} FROM tasks WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(task_from))
}

pub async fn for_update(tx: &TenantTx, id: i32) -> Result<Option<TaskDetails>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {TASK_COLUMNS}, {REMINDER_STATUS} FROM tasks WHERE id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(task_from))
}

pub async fn update(tx: &TenantTx, id: i32, t: &TaskWrite) -> Result<TaskDetails, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE tasks SET title = $2, description = $3, type = $4, status = $5, priority = $6, due_date = $7, \
             reminder_at = $8, assigned_to = $9, contact_id = $10, deal_id = $11, completed_at = $12, custom_fields = $13, \
             updated_at = now() WHERE id = $1 RETURNING {TASK_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &id,
                &t.title,
                &t.description,
                &t.r#type,
                &t.status,
                &t.priority,
                &t.due_date,
                &t.reminder_at,
                &t.assigned_to,
                &t.contact_id,
                &t.deal_id,
                &t.completed_at,
                &Json(&t.custom_fields),
            ],
        )
        .await?;
    let mut task = task_from(&row);
    task.reminder_status = super::reminders::sync(tx, &task).await?;
    Ok(task)
}

pub async fn delete(tx: &TenantTx, id: i32) -> Result<bool, DbError> {
    let stmt = tx.prepare_cached("DELETE FROM tasks WHERE id = $1").await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// Filters of `GET /tasks` and `GET /tasks/mine`.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<String>,
    pub priority: Option<String>,
    pub r#type: Option<String>,
    pub assigned_to: Option<i32>,
    pub contact_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub due_before: Option<DateTime<Utc>>,
    /// Open and past due.
    pub overdue: bool,
    /// Open, with a reminder or due date before this time (reminders surfacing).
    pub due_soon_before: Option<DateTime<Utc>>,
    /// Only open tasks (pending, in_progress).
    pub open: bool,
}

const TASK_WHERE: &str = "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR priority = $2) \
     AND ($3::text IS NULL OR type = $3) AND ($4::int IS NULL OR assigned_to = $4) \
     AND ($5::int IS NULL OR contact_id = $5) AND ($6::int IS NULL OR deal_id = $6) \
     AND ($7::timestamptz IS NULL OR due_date < $7) \
     AND (NOT $8 OR (status IN ('pending', 'in_progress') AND due_date < now())) \
     AND ($9::timestamptz IS NULL OR (status IN ('pending', 'in_progress') AND (reminder_at <= $9 OR due_date <= $9))) \
     AND (NOT $10 OR status IN ('pending', 'in_progress'))";

/// Sortable columns of tasks: `due_date` (tasks without one last) and `created_at`.
pub const TASK_SORTS: &[&str] = &["due_date", "created_at"];

pub async fn list(
    tx: &TenantTx,
    f: &TaskFilter,
    sort: &'static str,
    dir: Dir,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<Keyed<TaskDetails>>, DbError> {
    let column = if sort == "due_date" { "due_key" } else { "created_at" };
    let sql = format!(
        "SELECT {TASK_COLUMNS}, {column}, {REMINDER_STATUS} FROM tasks WHERE {TASK_WHERE} \
         AND ($11::timestamptz IS NULL OR ({column}, id) {cmp} ($11, $12)) \
         ORDER BY {column} {d}, id {d} LIMIT $13",
        cmp = dir.cmp(),
        d = dir.sql()
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let (at, id) = (after.map(|c| c.at), after.map(|c| c.id));
    let rows = tx
        .query(
            &stmt,
            &[
                &f.status,
                &f.priority,
                &f.r#type,
                &f.assigned_to,
                &f.contact_id,
                &f.deal_id,
                &f.due_before,
                &f.overdue,
                &f.due_soon_before,
                &f.open,
                &at,
                &id,
                &(limit + 1),
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| Keyed { row: task_from(r), at: r.get(17) }).collect())
}

pub async fn count(tx: &TenantTx, f: &TaskFilter) -> Result<i64, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT count(*) FROM tasks WHERE {TASK_WHERE}")).await?;
    let row = tx
        .query_one(
            &stmt,
            &[&f.status, &f.priority, &f.r#type, &f.assigned_to, &f.contact_id, &f.deal_id, &f.due_before, &f.overdue, &f.due_soon_before, &f.open],
        )
        .await?;
    Ok(row.get(0))
}
