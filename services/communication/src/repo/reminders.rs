//! Task reminders (`task_reminders`): kept in step with the task, claimed when due.

use chrono::{DateTime, Utc};
use crm_client_communication::TaskDetails;
use crm_tenant::{DbError, TenantTx};

/// Keeps the task's reminder in step with it: an open task with `reminder_at` has one
/// scheduled reminder at that time (a changed time schedules it again, also after it was
/// sent); a cleared time or a closed task drops a reminder not yet sent. Returns the
/// reminder's status after it (`None`: no reminder).
pub async fn sync(tx: &TenantTx, task: &TaskDetails) -> Result<Option<String>, DbError> {
    let open = matches!(task.task.status.as_str(), "pending" | "in_progress");
    match task.reminder_at.filter(|_| open) {
        Some(at) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO task_reminders (task_id, remind_at, next_attempt_at) VALUES ($1, $2, $2) \
                     ON CONFLICT (task_id) DO UPDATE SET remind_at = EXCLUDED.remind_at, next_attempt_at = EXCLUDED.remind_at, \
                     status = 'scheduled', attempts = 0, last_error = NULL, sent_at = NULL \
                     WHERE task_reminders.remind_at IS DISTINCT FROM EXCLUDED.remind_at",
                )
                .await?;
            tx.execute(&stmt, &[&task.task.id, &at]).await?;
        }
        None => {
            let stmt = tx.prepare_cached("DELETE FROM task_reminders WHERE task_id = $1 AND status <> 'sent'").await?;
            tx.execute(&stmt, &[&task.task.id]).await?;
        }
    }
    let status = tx.prepare_cached("SELECT status FROM task_reminders WHERE task_id = $1").await?;
    Ok(tx.query_opt(&status, &[&task.task.id]).await?.map(|r| r.get(0)))
}

/// A due reminder, locked by this transaction (others skip it).
pub struct DueReminder {
    pub task_id: i32,
    pub remind_at: DateTime<Utc>,
    pub attempts: i32,
}

/// Claims up to `limit` due reminders (`FOR UPDATE SKIP LOCKED`: another instance takes
/// others).
pub async fn claim_due(tx: &TenantTx, limit: i64) -> Result<Vec<DueReminder>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT task_id, remind_at, attempts FROM task_reminders WHERE status = 'scheduled' AND next_attempt_at <= now() \
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .await?;
    Ok(tx.query(&stmt, &[&limit]).await?.iter().map(|r| DueReminder { task_id: r.get(0), remind_at: r.get(1), attempts: r.get(2) }).collect())
}

pub async fn mark_sent(tx: &TenantTx, task_id: i32, error: Option<&str>) -> Result<(), DbError> {
    let stmt = tx
        .prepare_cached("UPDATE task_reminders SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = $2 WHERE task_id = $1")
        .await?;
    tx.execute(&stmt, &[&task_id, &error]).await?;
    Ok(())
}

/// A failed attempt: tried again at `retry_at`, or `failed` for good when `None`.
pub async fn mark_failed(tx: &TenantTx, task_id: i32, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<(), DbError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE task_reminders SET attempts = attempts + 1, last_error = $2, \
             status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'scheduled' END, \
             next_attempt_at = coalesce($3, next_attempt_at) WHERE task_id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&task_id, &error, &retry_at]).await?;
    Ok(())
}
