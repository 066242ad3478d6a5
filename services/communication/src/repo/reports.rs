//! The activity report's counts.

use chrono::{DateTime, Utc};
use crm_tenant::{DbError, TenantTx};

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
pub async fn activity_report(tx: &TenantTx, from: DateTime<Utc>, to: DateTime<Utc>, owner: Option<i32>) -> Result<ReportCounts, DbError> {
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
