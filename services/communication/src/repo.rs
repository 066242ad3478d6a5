//! All SQL of communication-service. Every function takes the caller's tenant-scoped
//! transaction (unqualified table names follow its search path); columns are always listed.

use chrono::{DateTime, Utc};
use crm_client_communication::{ActivityDetails, CustomFields, EmailStatus, EmailTemplateDetails, EmailTemplateInfo, TaskDetails, TaskInfo};
use crm_tenant::TenantTx;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use crate::domain::{ActivityWrite, TaskWrite};

pub type Tx<'a> = TenantTx<'a>;
type PgResult<T> = Result<T, tokio_postgres::Error>;

fn fields(value: serde_json::Value) -> CustomFields {
    match value {
        serde_json::Value::Object(map) => map,
        _ => CustomFields::new(),
    }
}

/// Sort direction spliced into SQL (from a whitelist, never from input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dir {
    Asc,
    Desc,
}

impl Dir {
    fn sql(self) -> &'static str {
        match self {
            Self::Asc => "ASC",
            Self::Desc => "DESC",
        }
    }

    fn cmp(self) -> &'static str {
        match self {
            Self::Asc => ">",
            Self::Desc => "<",
        }
    }
}

/// Keyset position after the last row of a page: the sort value and the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort the cursor was made for (a cursor of another sort is refused).
    pub sort: String,
    pub at: DateTime<Utc>,
    pub id: i32,
}

/// A page of rows with the keyset value of each.
pub struct Keyed<T> {
    pub row: T,
    pub at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------
// Activities

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
pub async fn insert_activity(
    tx: &Tx<'_>,
    a: &ActivityWrite,
    created_by: Option<i32>,
    source_event_id: Option<&str>,
) -> PgResult<Option<ActivityDetails>> {
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

pub async fn activity_by_id(tx: &Tx<'_>, id: i32) -> PgResult<Option<ActivityDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(activity_from))
}

/// Same, locking the row for the rest of the transaction (read, check, write).
pub async fn activity_for_update(tx: &Tx<'_>, id: i32) -> PgResult<Option<ActivityDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(activity_from))
}

pub async fn update_activity(tx: &Tx<'_>, id: i32, a: &ActivityWrite) -> PgResult<ActivityDetails> {
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

pub async fn delete_activity(tx: &Tx<'_>, id: i32) -> PgResult<bool> {
    let stmt = tx.prepare_cached("DELETE FROM activities WHERE id = $1").await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// Filters of `GET /activities` (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
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
}

const ACTIVITY_WHERE: &str = "($1::text IS NULL OR type = $1) AND ($2::text IS NULL OR status = $2) \
     AND ($3::int IS NULL OR contact_id = $3) AND ($4::int IS NULL OR company_id = $4) \
     AND ($5::int IS NULL OR deal_id = $5) AND ($6::int IS NULL OR owner_id = $6) \
     AND ($7::bool IS NULL OR needs_review = $7) AND ($8::timestamptz IS NULL OR occurred_at >= $8) \
     AND ($9::timestamptz IS NULL OR occurred_at < $9)";

/// Sortable columns of activities (`?sort=`), all non-null.
pub const ACTIVITY_SORTS: &[&str] = &["occurred_at", "created_at"];

pub async fn list_activities(
    tx: &Tx<'_>,
    f: &ActivityFilter,
    sort: &'static str,
    dir: Dir,
    after: Option<&Cursor>,
    limit: i64,
) -> PgResult<Vec<Keyed<ActivityDetails>>> {
    debug_assert!(ACTIVITY_SORTS.contains(&sort));
    let sql = format!(
        "SELECT {ACTIVITY_COLUMNS}, {sort} FROM activities WHERE {ACTIVITY_WHERE} \
         AND ($10::timestamptz IS NULL OR ({sort}, id) {cmp} ($10, $11)) \
         ORDER BY {sort} {d}, id {d} LIMIT $12",
        cmp = dir.cmp(),
        d = dir.sql()
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let (at, id) = (after.map(|c| c.at), after.map(|c| c.id));
    let rows = tx
        .query(
            &stmt,
            &[&f.r#type, &f.status, &f.contact_id, &f.company_id, &f.deal_id, &f.owner_id, &f.needs_review, &f.from, &f.to, &at, &id, &(limit + 1)],
        )
        .await?;
    Ok(rows.iter().map(|r| Keyed { row: activity_from(r), at: r.get(20) }).collect())
}

pub async fn count_activities(tx: &Tx<'_>, f: &ActivityFilter) -> PgResult<i64> {
    let stmt = tx.prepare_cached(&format!("SELECT count(*) FROM activities WHERE {ACTIVITY_WHERE}")).await?;
    let row = tx
        .query_one(&stmt, &[&f.r#type, &f.status, &f.contact_id, &f.company_id, &f.deal_id, &f.owner_id, &f.needs_review, &f.from, &f.to])
        .await?;
    Ok(row.get(0))
}

// ---------------------------------------------------------------------------------------
// Timeline

/// One entry of a contact's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineItem {
    /// activity, email, task
    pub kind: String,
    /// Id of the activity, email (tracking row) or task.
    pub id: i32,
    /// email, call, meeting, note, task (activities, emails); task, reminder, follow_up (tasks)
    #[serde(rename = "type")]
    pub r#type: String,
    pub title: String,
    /// The first 500 characters of the description (emails: of the text body).
    pub description: String,
    /// The activity's, email's or task's status.
    pub status: String,
    /// When it happened (activities, emails sent) or is due (tasks; creation when no due date).
    pub occurred_at: DateTime<Utc>,
    pub owner_id: Option<i32>,
    pub owner_name: Option<String>,
    pub deal_id: Option<i32>,
    /// Emails: the activity logged for it.
    pub activity_id: Option<i32>,
    pub opened_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
}

/// Keyset position in a timeline (newest first): time, kind, id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineCursor {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub id: i32,
}

/// Activities (those logged for an email show as the email), emails and tasks of one
/// contact, newest first. `types`: keep only these item types (empty: all).
pub async fn timeline(
    tx: &Tx<'_>,
    contact_id: i32,
    types: &[String],
    after: Option<&TimelineCursor>,
    limit: i64,
) -> PgResult<Vec<TimelineItem>> {
    let stmt = tx
        .prepare_cached(
            "SELECT kind, id, type, title, description, status, occurred_at, owner_id, deal_id, activity_id, opened_at, clicked_at FROM (\
               SELECT 'activity' AS kind, a.id, a.type, a.subject AS title, left(coalesce(a.description, ''), 500) AS description, a.status, \
                      a.occurred_at, a.owner_id, a.deal_id, NULL::int AS activity_id, NULL::timestamptz AS opened_at, NULL::timestamptz AS clicked_at \
                 FROM activities a \
                WHERE a.contact_id = $1 AND NOT EXISTS (SELECT 1 FROM email_tracking e WHERE e.activity_id = a.id) \
               UNION ALL \
               SELECT 'email', e.id, 'email', e.subject, left(coalesce(e.body_text, ''), 500), e.status, coalesce(e.sent_at, e.created_at), \
                      e.sender_id, e.deal_id, e.activity_id, e.opened_at, e.clicked_at \
                 FROM email_tracking e WHERE e.contact_id = $1 \
               UNION ALL \
               SELECT 'task', t.id, t.type, t.title, left(coalesce(t.description, ''), 500), t.status, coalesce(t.due_date, t.created_at), \
                      t.assigned_to, t.deal_id, NULL, NULL, NULL \
                 FROM tasks t WHERE t.contact_id = $1 \
             ) items \
             WHERE (cardinality($2::text[]) = 0 OR type = ANY($2) OR (kind = 'task' AND 'task' = ANY($2))) \
               AND ($3::timestamptz IS NULL OR (occurred_at, kind, id) < ($3, $4, $5)) \
             ORDER BY occurred_at DESC, kind DESC, id DESC LIMIT $6",
        )
        .await?;
    let (at, kind, id) = (after.map(|c| c.at), after.map(|c| c.kind.as_str()), after.map(|c| c.id));
    let rows = tx.query(&stmt, &[&contact_id, &types, &at, &kind, &id, &(limit + 1)]).await?;
    Ok(rows
        .iter()
        .map(|r| TimelineItem {
            kind: r.get(0),
            id: r.get(1),
            r#type: r.get(2),
            title: r.get(3),
            description: r.get(4),
            status: r.get(5),
            occurred_at: r.get(6),
            owner_id: r.get(7),
            owner_name: None,
            deal_id: r.get(8),
            activity_id: r.get(9),
            opened_at: r.get(10),
            clicked_at: r.get(11),
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// Tasks

const TASK_COLUMNS: &str = "id, title, coalesce(description, ''), type, status, priority, due_date, assigned_to, contact_id, \
     deal_id, created_at, reminder_at, completed_at, coalesce(status IN ('pending', 'in_progress') AND due_date < now(), false), \
     custom_fields, created_by, updated_at, due_key";

fn task_from(row: &Row) -> TaskDetails {
    TaskDetails {
        task: TaskInfo {
            id: row.get(0),
            title: row.get(1),
            description: row.get(2),
            r#type: row.get(3),
            status: row.get(4),
            priority: row.get(5),
            due_date: row.get(6),
            assigned_to: row.get(7),
            contact_id: row.get(8),
            deal_id: row.get(9),
            created_at: row.get(10),
        },
        reminder_at: row.get(11),
        completed_at: row.get(12),
        is_overdue: row.get(13),
        custom_fields: fields(row.get(14)),
        created_by: row.get(15),
        updated_at: row.get(16),
    }
}

pub async fn insert_task(tx: &Tx<'_>, t: &TaskWrite, created_by: Option<i32>, source_event_id: Option<&str>) -> PgResult<Option<TaskDetails>> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO tasks (title, description, type, status, priority, due_date, reminder_at, assigned_to, contact_id, \
             deal_id, completed_at, custom_fields, created_by, source_event_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (source_event_id) DO NOTHING RETURNING {TASK_COLUMNS}"
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
    Ok(row.as_ref().map(task_from))
}

pub async fn task_by_id(tx: &Tx<'_>, id: i32) -> PgResult<Option<TaskDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(task_from))
}

pub async fn task_for_update(tx: &Tx<'_>, id: i32) -> PgResult<Option<TaskDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(task_from))
}

pub async fn update_task(tx: &Tx<'_>, id: i32, t: &TaskWrite) -> PgResult<TaskDetails> {
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
    Ok(task_from(&row))
}

pub async fn delete_task(tx: &Tx<'_>, id: i32) -> PgResult<bool> {
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

pub async fn list_tasks(
    tx: &Tx<'_>,
    f: &TaskFilter,
    sort: &'static str,
    dir: Dir,
    after: Option<&Cursor>,
    limit: i64,
) -> PgResult<Vec<Keyed<TaskDetails>>> {
    let column = if sort == "due_date" { "due_key" } else { "created_at" };
    let sql = format!(
        "SELECT {TASK_COLUMNS}, {column} FROM tasks WHERE {TASK_WHERE} \
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
    Ok(rows.iter().map(|r| Keyed { row: task_from(r), at: r.get(18) }).collect())
}

pub async fn count_tasks(tx: &Tx<'_>, f: &TaskFilter) -> PgResult<i64> {
    let stmt = tx.prepare_cached(&format!("SELECT count(*) FROM tasks WHERE {TASK_WHERE}")).await?;
    let row = tx
        .query_one(
            &stmt,
            &[&f.status, &f.priority, &f.r#type, &f.assigned_to, &f.contact_id, &f.deal_id, &f.due_before, &f.overdue, &f.due_soon_before, &f.open],
        )
        .await?;
    Ok(row.get(0))
}

// ---------------------------------------------------------------------------------------
// Email templates

const TEMPLATE_COLUMNS: &str = "id, name, subject, coalesce(category, ''), is_active, body_html, coalesce(body_text, ''), \
     variables, created_by, created_at, updated_at";

fn template_from(row: &Row) -> EmailTemplateDetails {
    let variables: serde_json::Value = row.get(7);
    EmailTemplateDetails {
        template: EmailTemplateInfo { id: row.get(0), name: row.get(1), subject: row.get(2), category: row.get(3), is_active: row.get(4) },
        body_html: row.get(5),
        body_text: row.get(6),
        variables: serde_json::from_value(variables).unwrap_or_default(),
        created_by: row.get(8),
        created_at: row.get(9),
        updated_at: row.get(10),
    }
}

/// A template as written (validated; `variables` computed from the texts).
pub struct TemplateWrite {
    pub name: String,
    pub subject: String,
    pub body_html: String,
    pub body_text: Option<String>,
    pub category: Option<String>,
    pub variables: Vec<String>,
    pub is_active: bool,
}

pub async fn insert_template(tx: &Tx<'_>, t: &TemplateWrite, created_by: i32) -> PgResult<EmailTemplateDetails> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO email_templates (name, subject, body_html, body_text, category, variables, is_active, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TEMPLATE_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_one(&stmt, &[&t.name, &t.subject, &t.body_html, &t.body_text, &t.category, &Json(&t.variables), &t.is_active, &created_by])
        .await?;
    Ok(template_from(&row))
}

pub async fn template_by_id(tx: &Tx<'_>, id: i32) -> PgResult<Option<EmailTemplateDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {TEMPLATE_COLUMNS} FROM email_templates WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(template_from))
}

/// `None` when there is no such template.
pub async fn update_template(tx: &Tx<'_>, id: i32, t: &TemplateWrite) -> PgResult<Option<EmailTemplateDetails>> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE email_templates SET name = $2, subject = $3, body_html = $4, body_text = $5, category = $6, variables = $7, \
             is_active = $8, updated_at = now() WHERE id = $1 RETURNING {TEMPLATE_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_opt(&stmt, &[&id, &t.name, &t.subject, &t.body_html, &t.body_text, &t.category, &Json(&t.variables), &t.is_active])
        .await?;
    Ok(row.as_ref().map(template_from))
}

pub async fn delete_template(tx: &Tx<'_>, id: i32) -> PgResult<bool> {
    let stmt = tx.prepare_cached("DELETE FROM email_templates WHERE id = $1").await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

#[derive(Debug, Clone, Default)]
pub struct TemplateFilter {
    pub category: Option<String>,
    pub is_active: Option<bool>,
    /// Substring of the name, case-insensitive.
    pub search: Option<String>,
}

const TEMPLATE_WHERE: &str = "($1::text IS NULL OR category = $1) AND ($2::bool IS NULL OR is_active = $2) \
     AND ($3::text IS NULL OR strpos(lower(name), lower($3)) > 0)";

/// Keyset position in the template list (by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameCursor {
    pub name: String,
    pub id: i32,
}

pub async fn list_templates(tx: &Tx<'_>, f: &TemplateFilter, after: Option<&NameCursor>, limit: i64) -> PgResult<Vec<EmailTemplateDetails>> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM email_templates WHERE {TEMPLATE_WHERE} \
             AND ($4::text IS NULL OR (lower(name), id) > ($4, $5)) ORDER BY lower(name), id LIMIT $6"
        ))
        .await?;
    let (name, id) = (after.map(|c| c.name.as_str()), after.map(|c| c.id));
    let rows = tx.query(&stmt, &[&f.category, &f.is_active, &f.search, &name, &id, &(limit + 1)]).await?;
    Ok(rows.iter().map(template_from).collect())
}

pub async fn count_templates(tx: &Tx<'_>, f: &TemplateFilter) -> PgResult<i64> {
    let stmt = tx.prepare_cached(&format!("SELECT count(*) FROM email_templates WHERE {TEMPLATE_WHERE}")).await?;
    Ok(tx.query_one(&stmt, &[&f.category, &f.is_active, &f.search]).await?.get(0))
}

// ---------------------------------------------------------------------------------------
// Emails (tracking rows)

const EMAIL_COLUMNS: &str = "id, activity_id, template_id, contact_id, deal_id, sender_id, email_address, subject, status, \
     message_id, sent_at, delivered_at, opened_at, clicked_at, open_count, click_count, created_at";

fn email_from(row: &Row) -> EmailStatus {
    EmailStatus {
        id: row.get(0),
        activity_id: row.get(1),
        template_id: row.get(2),
        contact_id: row.get(3),
        deal_id: row.get(4),
        sender_id: row.get(5),
        email_address: row.get(6),
        subject: row.get(7),
        status: row.get(8),
        message_id: row.get(9),
        sent_at: row.get(10),
        delivered_at: row.get(11),
        opened_at: row.get(12),
        clicked_at: row.get(13),
        open_count: row.get(14),
        click_count: row.get(15),
        created_at: row.get(16),
    }
}

/// A new tracking row. CRM emails keep their rendered bodies (delivered later by the
/// delivery consumer); system emails (invitation, reset) are recorded after sending, without
/// bodies (they hold secrets).
pub struct EmailWrite<'a> {
    pub kind: &'a str,
    pub status: &'a str,
    pub activity_id: Option<i32>,
    pub template_id: Option<i32>,
    pub contact_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub sender_id: Option<i32>,
    pub email_address: &'a str,
    pub subject: &'a str,
    pub body_html: Option<&'a str>,
    pub body_text: Option<&'a str>,
    pub message_id: &'a str,
    pub sent_at: Option<DateTime<Utc>>,
    pub source_event_id: Option<&'a str>,
}

/// `None` when a row for the same source event exists already.
pub async fn insert_email(tx: &Tx<'_>, e: &EmailWrite<'_>) -> PgResult<Option<EmailStatus>> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO email_tracking (kind, status, activity_id, template_id, contact_id, deal_id, sender_id, email_address, \
             subject, body_html, body_text, message_id, sent_at, delivered_at, source_event_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) \
             ON CONFLICT (source_event_id) DO NOTHING RETURNING {EMAIL_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_opt(
            &stmt,
            &[
                &e.kind,
                &e.status,
                &e.activity_id,
                &e.template_id,
                &e.contact_id,
                &e.deal_id,
                &e.sender_id,
                &e.email_address,
                &e.subject,
                &e.body_html,
                &e.body_text,
                &e.message_id,
                &e.sent_at,
                &e.source_event_id,
            ],
        )
        .await?;
    Ok(row.as_ref().map(email_from))
}

pub async fn email_by_id(tx: &Tx<'_>, id: i32) -> PgResult<Option<EmailStatus>> {
    let stmt = tx.prepare_cached(&format!("SELECT {EMAIL_COLUMNS} FROM email_tracking WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(email_from))
}

/// A queued CRM email with its bodies, locked for delivery.
pub struct QueuedEmail {
    pub email: EmailStatus,
    pub body_html: Option<String>,
    pub body_text: String,
}

pub async fn queued_email_for_update(tx: &Tx<'_>, id: i32) -> PgResult<Option<QueuedEmail>> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {EMAIL_COLUMNS}, body_html, coalesce(body_text, '') FROM email_tracking WHERE id = $1 AND status = 'queued' FOR UPDATE"
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| QueuedEmail { email: email_from(&r), body_html: r.get(17), body_text: r.get(18) }))
}

pub async fn mark_sent(tx: &Tx<'_>, id: i32, at: DateTime<Utc>) -> PgResult<EmailStatus> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE email_tracking SET status = 'sent', sent_at = $2, delivered_at = $2 WHERE id = $1 RETURNING {EMAIL_COLUMNS}"
        ))
        .await?;
    Ok(email_from(&tx.query_one(&stmt, &[&id, &at]).await?))
}

/// Counts an open; the bool tells whether it was the first. `None`: no such email.
pub async fn record_open(tx: &Tx<'_>, id: i32) -> PgResult<Option<(EmailStatus, bool)>> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE email_tracking e SET open_count = e.open_count + 1, opened_at = coalesce(e.opened_at, now()), \
             status = CASE WHEN e.status IN ('queued', 'sent') THEN 'opened' ELSE e.status END \
             FROM (SELECT id, opened_at IS NULL AS first FROM email_tracking WHERE id = $1 FOR UPDATE) old \
             WHERE e.id = old.id RETURNING {cols}, old.first",
            cols = EMAIL_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| (email_from(&r), r.get(17))))
}

/// Counts a click (a click implies an open); the bool tells whether it was the first click.
pub async fn record_click(tx: &Tx<'_>, id: i32) -> PgResult<Option<(EmailStatus, bool)>> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE email_tracking e SET click_count = e.click_count + 1, clicked_at = coalesce(e.clicked_at, now()), \
             opened_at = coalesce(e.opened_at, now()), status = 'clicked' \
             FROM (SELECT id, clicked_at IS NULL AS first FROM email_tracking WHERE id = $1 FOR UPDATE) old \
             WHERE e.id = old.id RETURNING {cols}, old.first",
            cols = EMAIL_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| (email_from(&r), r.get(17))))
}

// ---------------------------------------------------------------------------------------
// Reports

/// Raw counts of the activity report; names are added by the handler.
pub struct ReportCounts {
    pub total: i64,
    pub by_type: Vec<(String, i64)>,
    pub by_status: Vec<(String, i64)>,
    pub by_outcome: Vec<(Option<String>, i64)>,
    /// owner, count, completed
    pub by_owner: Vec<(Option<i32>, i64, i64)>,
    pub open_tasks: i64,
    pub overdue_tasks: i64,
    pub tasks_due_next_7_days: i64,
}

/// Activities that occurred in `[from, to)`, optionally of one owner; plus the open tasks
/// (of that owner) as "next actions".
pub async fn activity_report(tx: &Tx<'_>, from: DateTime<Utc>, to: DateTime<Utc>, owner: Option<i32>) -> PgResult<ReportCounts> {
    const RANGE: &str = "occurred_at >= $1 AND occurred_at < $2 AND ($3::int IS NULL OR owner_id = $3)";
    let grouped = |col: &str| format!("SELECT {col}, count(*) FROM activities WHERE {RANGE} GROUP BY 1 ORDER BY 2 DESC, 1");
    let by_type = tx.prepare_cached(&grouped("type")).await?;
    let by_status = tx.prepare_cached(&grouped("status")).await?;
    let by_outcome = tx.prepare_cached(&grouped("outcome")).await?;
    let by_owner = tx
        .prepare_cached(&format!(
            "SELECT owner_id, count(*), count(*) FILTER (WHERE status = 'completed') FROM activities WHERE {RANGE} \
             GROUP BY 1 ORDER BY 2 DESC, 1"
        ))
        .await?;
    let tasks = tx
        .prepare_cached(
            "SELECT count(*), count(*) FILTER (WHERE due_date < now()), \
                    count(*) FILTER (WHERE due_date >= now() AND due_date < now() + interval '7 days') \
             FROM tasks WHERE status IN ('pending', 'in_progress') AND ($1::int IS NULL OR assigned_to = $1)",
        )
        .await?;
    let p: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&from, &to, &owner];
    let by_type: Vec<(String, i64)> = tx.query(&by_type, &p).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let by_status = tx.query(&by_status, &p).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let by_outcome = tx.query(&by_outcome, &p).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let by_owner = tx.query(&by_owner, &p).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let t = tx.query_one(&tasks, &[&owner]).await?;
    Ok(ReportCounts {
        total: by_type.iter().map(|(_, n)| n).sum(),
        by_type,
        by_status,
        by_outcome,
        by_owner,
        open_tasks: t.get(0),
        overdue_tasks: t.get(1),
        tasks_due_next_7_days: t.get(2),
    })
}
