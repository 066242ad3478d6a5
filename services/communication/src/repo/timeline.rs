//! The timelines of a contact (activities, emails, tasks and notes) and of a company
//! (activities and notes), each one keyset-paged list, newest first.

use chrono::{DateTime, Utc};
use crm_tenant::{DbError, TenantTx};
use serde::{Deserialize, Serialize};

use super::{EmailVisibility, activity_visible, email_visible};

/// One entry of a contact's or company's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineItem {
    /// activity, email, task, note
    pub kind: String,
    /// Id of the activity, email (tracking row), task or note.
    pub id: i32,
    /// email, call, meeting, note, task (activities, emails); task, reminder, follow_up
    /// (tasks); note (notes)
    #[serde(rename = "type")]
    pub r#type: String,
    /// Notes: the first line of the body without leading `#` (at most 255 characters).
    pub title: String,
    /// The first 500 characters of the description (emails: of the text body; notes: of the
    /// markdown body).
    pub description: String,
    /// The activity's, email's or task's status; `completed` for notes.
    pub status: String,
    /// When it happened (activities, emails sent), is due (tasks; creation when no due date)
    /// or was written (notes).
    pub occurred_at: DateTime<Utc>,
    /// The owner (activities), sender (emails), assignee (tasks) or author (notes).
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

/// A note as a timeline item (the columns of the `SELECT`s above, from `notes n`).
const NOTE_ITEM: &str = "'note', n.id, 'note', coalesce(nullif(left(rtrim(ltrim(split_part(n.body, E'\\n', 1), '# '), E' \\r'), 255), ''), 'Note'), \
     left(n.body, 500), 'completed', n.created_at, n.author_id, n.deal_id, NULL, NULL, NULL";

/// Activities (those logged for an email show as the email), emails, tasks and notes of
/// one contact, newest first. `types`: keep only these item types (empty: all).
pub async fn of_contact(
    tx: &TenantTx,
    contact_id: i32,
    types: &[String],
    vis: &EmailVisibility,
    after: Option<&TimelineCursor>,
    limit: i64,
) -> Result<Vec<TimelineItem>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT kind, id, type, title, description, status, occurred_at, owner_id, deal_id, activity_id, opened_at, clicked_at FROM (\
               SELECT 'activity' AS kind, a.id, a.type, a.subject AS title, left(coalesce(a.description, ''), 500) AS description, a.status, \
                      a.occurred_at, a.owner_id, a.deal_id, NULL::int AS activity_id, NULL::timestamptz AS opened_at, NULL::timestamptz AS clicked_at \
                 FROM activities a \
                WHERE a.contact_id = $1 AND NOT EXISTS (SELECT 1 FROM email_tracking e WHERE e.activity_id = a.id) AND {activity} \
               UNION ALL \
               SELECT 'email', e.id, 'email', e.subject, left(coalesce(e.body_text, ''), 500), e.status, coalesce(e.sent_at, e.created_at), \
                      e.sender_id, e.deal_id, e.activity_id, e.opened_at, e.clicked_at \
                 FROM email_tracking e WHERE e.contact_id = $1 AND {email} \
               UNION ALL \
               SELECT 'task', t.id, t.type, t.title, left(coalesce(t.description, ''), 500), t.status, coalesce(t.due_date, t.created_at), \
                      t.assigned_to, t.deal_id, NULL, NULL, NULL \
                 FROM tasks t WHERE t.contact_id = $1 \
               UNION ALL \
               SELECT {NOTE_ITEM} FROM notes n WHERE n.contact_id = $1 \
             ) items \
             WHERE (cardinality($2::text[]) = 0 OR type = ANY($2) OR (kind = 'task' AND 'task' = ANY($2))) \
               AND ($3::timestamptz IS NULL OR (occurred_at, kind, id) < ($3, $4, $5)) \
             ORDER BY occurred_at DESC, kind DESC, id DESC LIMIT $6",
            activity = activity_visible("a", 7, 8),
            email = email_visible("e", 7, 8, 9),
        ))
        .await?;
    let (at, kind, id) = (after.map(|c| c.at), after.map(|c| c.kind.as_str()), after.map(|c| c.id));
    let rows = tx.query(&stmt, &[&contact_id, &types, &at, &kind, &id, &(limit + 1), &vis.all, &vis.user, &vis.system]).await?;
    Ok(rows.iter().map(item_from).collect())
}

fn item_from(r: &tokio_postgres::Row) -> TimelineItem {
    TimelineItem {
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
    }
}

/// Activities (every type; an email activity is subject to `vis`) and notes of one company,
/// newest first (emails and tasks have no company). `types`: keep only these item types
/// (empty: all).
pub async fn of_company(
    tx: &TenantTx,
    company_id: i32,
    types: &[String],
    vis: &EmailVisibility,
    after: Option<&TimelineCursor>,
    limit: i64,
) -> Result<Vec<TimelineItem>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT kind, id, type, title, description, status, occurred_at, owner_id, deal_id, activity_id, opened_at, clicked_at FROM (\
               SELECT 'activity' AS kind, a.id, a.type, a.subject AS title, left(coalesce(a.description, ''), 500) AS description, a.status, \
                      a.occurred_at, a.owner_id, a.deal_id, NULL::int AS activity_id, NULL::timestamptz AS opened_at, NULL::timestamptz AS clicked_at \
                 FROM activities a WHERE a.company_id = $1 AND {activity} \
               UNION ALL \
               SELECT {NOTE_ITEM} FROM notes n WHERE n.company_id = $1 \
             ) items \
             WHERE (cardinality($2::text[]) = 0 OR type = ANY($2)) \
               AND ($3::timestamptz IS NULL OR (occurred_at, kind, id) < ($3, $4, $5)) \
             ORDER BY occurred_at DESC, kind DESC, id DESC LIMIT $6",
            activity = activity_visible("a", 7, 8),
        ))
        .await?;
    let (at, kind, id) = (after.map(|c| c.at), after.map(|c| c.kind.as_str()), after.map(|c| c.id));
    let rows = tx.query(&stmt, &[&company_id, &types, &at, &kind, &id, &(limit + 1), &vis.all, &vis.user]).await?;
    Ok(rows.iter().map(item_from).collect())
}
