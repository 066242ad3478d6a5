//! Email sequences, their steps, enrollments and the steps of each enrollment.

use chrono::{DateTime, Utc};
use crm_client_communication::{Enrollment, EnrollmentStep, Sequence, SequenceStep};
use crm_tenant::{DbError, TenantTx};
use tokio_postgres::Row;

/// A sequence as written (validated): steps in order, delays in minutes.
pub struct SequenceWrite {
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    /// (template_id, delay_minutes), in sending order.
    pub steps: Vec<(i32, i32)>,
}

const SEQUENCE_COLUMNS: &str = "s.id, s.name, coalesce(s.description, ''), s.is_active, s.created_by, s.created_at, s.updated_at, \
     (SELECT count(*) FROM sequence_enrollments e WHERE e.sequence_id = s.id AND e.status = 'active')";

fn sequence_from(row: &Row, steps: Vec<SequenceStep>) -> Sequence {
    Sequence {
        id: row.get(0),
        name: row.get(1),
        description: row.get(2),
        is_active: row.get(3),
        created_by: row.get(4),
        created_at: row.get(5),
        updated_at: row.get(6),
        active_enrollments: row.get(7),
        steps,
    }
}

async fn steps_of(tx: &TenantTx, sequence_id: i32) -> Result<Vec<SequenceStep>, DbError> {
    let stmt = tx
        .prepare_cached("SELECT position, template_id, delay_minutes FROM sequence_steps WHERE sequence_id = $1 ORDER BY position")
        .await?;
    Ok(tx
        .query(&stmt, &[&sequence_id])
        .await?
        .iter()
        .map(|r| {
            let minutes: i32 = r.get(2);
            SequenceStep { position: r.get(0), template_id: r.get(1), delay_minutes: minutes, delay_hours: f64::from(minutes) / 60.0 }
        })
        .collect())
}

async fn write_steps(tx: &TenantTx, sequence_id: i32, steps: &[(i32, i32)]) -> Result<(), DbError> {
    let delete = tx.prepare_cached("DELETE FROM sequence_steps WHERE sequence_id = $1").await?;
    tx.execute(&delete, &[&sequence_id]).await?;
    let insert = tx.prepare_cached("INSERT INTO sequence_steps (sequence_id, position, template_id, delay_minutes) VALUES ($1, $2, $3, $4)").await?;
    for (i, (template_id, delay)) in steps.iter().enumerate() {
        let position = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(&insert, &[&sequence_id, &position, template_id, delay]).await?;
    }
    Ok(())
}

pub async fn insert(tx: &TenantTx, s: &SequenceWrite, created_by: Option<i32>) -> Result<Sequence, DbError> {
    let stmt = tx
        .prepare_cached("INSERT INTO sequences (name, description, is_active, created_by) VALUES ($1, $2, $3, $4) RETURNING id")
        .await?;
    let id: i32 = tx.query_one(&stmt, &[&s.name, &s.description, &s.is_active, &created_by]).await?.get(0);
    write_steps(tx, id, &s.steps).await?;
    by_id(tx, id).await?.ok_or(DbError::Refused("the inserted sequence is gone"))
}

pub async fn by_id(tx: &TenantTx, id: i32) -> Result<Option<Sequence>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {SEQUENCE_COLUMNS} FROM sequences s WHERE s.id = $1")).await?;
    match tx.query_opt(&stmt, &[&id]).await? {
        Some(row) => Ok(Some(sequence_from(&row, steps_of(tx, id).await?))),
        None => Ok(None),
    }
}

pub async fn for_update(tx: &TenantTx, id: i32) -> Result<Option<Sequence>, DbError> {
    let lock = tx.prepare_cached("SELECT id FROM sequences WHERE id = $1 FOR UPDATE").await?;
    if tx.query_opt(&lock, &[&id]).await?.is_none() {
        return Ok(None);
    }
    by_id(tx, id).await
}

/// Replaces name, description, activity and steps (running enrollments keep the steps they
/// were scheduled with).
pub async fn update(tx: &TenantTx, id: i32, s: &SequenceWrite) -> Result<Sequence, DbError> {
    let stmt = tx
        .prepare_cached("UPDATE sequences SET name = $2, description = $3, is_active = $4, updated_at = clock_timestamp() WHERE id = $1")
        .await?;
    tx.execute(&stmt, &[&id, &s.name, &s.description, &s.is_active]).await?;
    write_steps(tx, id, &s.steps).await?;
    by_id(tx, id).await?.ok_or(DbError::Refused("the updated sequence is gone"))
}

/// Deletes the sequence; its enrollments and their steps go with it.
pub async fn delete(tx: &TenantTx, id: i32) -> Result<bool, DbError> {
    let stmt = tx.prepare_cached("DELETE FROM sequences WHERE id = $1").await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// A page of sequences by name (keyset on lower(name), id).
pub async fn list(tx: &TenantTx, after: Option<(&str, i32)>, limit: i64) -> Result<Vec<Sequence>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences s WHERE ($1::text IS NULL OR (lower(s.name), s.id) > ($1, $2)) \
             ORDER BY lower(s.name), s.id LIMIT $3"
        ))
        .await?;
    let (name, id) = after.map_or((None, 0), |(n, i)| (Some(n.to_owned()), i));
    let rows = tx.query(&stmt, &[&name, &id, &(limit + 1)]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i32 = row.get(0);
        out.push(sequence_from(row, steps_of(tx, id).await?));
    }
    Ok(out)
}

pub async fn count(tx: &TenantTx) -> Result<i64, DbError> {
    Ok(tx.query_one("SELECT count(*) FROM sequences", &[]).await?.get(0))
}

// ---- enrollments ----

const ENROLLMENT_COLUMNS: &str = "id, sequence_id, contact_id, deal_id, status, stop_reason, enrolled_by, rule_id, created_at, updated_at, stopped_at";

fn enrollment_from(row: &Row, steps: Vec<EnrollmentStep>) -> Enrollment {
    Enrollment {
        id: row.get(0),
        sequence_id: row.get(1),
        contact_id: row.get(2),
        deal_id: row.get(3),
        status: row.get(4),
        stop_reason: row.get(5),
        enrolled_by: row.get(6),
        rule_id: row.get(7),
        created_at: row.get(8),
        updated_at: row.get(9),
        stopped_at: row.get(10),
        steps,
    }
}

async fn enrollment_steps(tx: &TenantTx, enrollment_id: i32) -> Result<Vec<EnrollmentStep>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT position, template_id, status, due_at, attempts, CASE WHEN status = 'scheduled' THEN next_attempt_at END, \
             last_error, reason, email_id, done_at FROM enrollment_steps WHERE enrollment_id = $1 ORDER BY position",
        )
        .await?;
    Ok(tx
        .query(&stmt, &[&enrollment_id])
        .await?
        .iter()
        .map(|r| EnrollmentStep {
            position: r.get(0),
            template_id: r.get(1),
            status: r.get(2),
            due_at: r.get(3),
            attempts: r.get(4),
            next_attempt_at: r.get(5),
            error: r.get(6),
            reason: r.get(7),
            email_id: r.get(8),
            done_at: r.get(9),
        })
        .collect())
}

/// A new enrollment.
pub struct EnrollmentWrite<'a> {
    pub sequence_id: i32,
    pub contact_id: i32,
    pub deal_id: Option<i32>,
    pub enrolled_by: Option<i32>,
    pub rule_id: Option<i32>,
    pub source_event_id: Option<&'a str>,
}

/// Enrolls the contact and schedules every step (due times add up the delays from `now`).
/// `None`: the contact is in the sequence already (or the source event was applied).
pub async fn enroll(tx: &TenantTx, e: &EnrollmentWrite<'_>, now: DateTime<Utc>) -> Result<Option<Enrollment>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO sequence_enrollments (sequence_id, contact_id, deal_id, enrolled_by, rule_id, source_event_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING RETURNING {ENROLLMENT_COLUMNS}"
        ))
        .await?;
    let Some(row) = tx.query_opt(&stmt, &[&e.sequence_id, &e.contact_id, &e.deal_id, &e.enrolled_by, &e.rule_id, &e.source_event_id, &now]).await?
    else {
        return Ok(None);
    };
    let id: i32 = row.get(0);
    let steps = tx
        .prepare_cached(
            "INSERT INTO enrollment_steps (enrollment_id, position, template_id, due_at, next_attempt_at) \
             SELECT $1, position, template_id, due, due FROM ( \
               SELECT position, template_id, $3::timestamptz + make_interval(mins => (sum(delay_minutes) OVER (ORDER BY position))::int) AS due \
               FROM sequence_steps WHERE sequence_id = $2) s",
        )
        .await?;
    tx.execute(&steps, &[&id, &e.sequence_id, &now]).await?;
    Ok(Some(enrollment_from(&row, enrollment_steps(tx, id).await?)))
}

pub async fn enrollment(tx: &TenantTx, sequence_id: i32, id: i32) -> Result<Option<Enrollment>, DbError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {ENROLLMENT_COLUMNS} FROM sequence_enrollments WHERE id = $1 AND sequence_id = $2"))
        .await?;
    match tx.query_opt(&stmt, &[&id, &sequence_id]).await? {
        Some(row) => Ok(Some(enrollment_from(&row, enrollment_steps(tx, id).await?))),
        None => Ok(None),
    }
}

/// A page of a sequence's enrollments, newest first (keyset on id), optionally by status.
pub async fn enrollments(tx: &TenantTx, sequence_id: i32, status: Option<&str>, before_id: Option<i32>, limit: i64) -> Result<Vec<Enrollment>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM sequence_enrollments WHERE sequence_id = $1 AND ($2::text IS NULL OR status = $2) \
             AND ($3::int IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .await?;
    let rows = tx.query(&stmt, &[&sequence_id, &status, &before_id, &(limit + 1)]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i32 = row.get(0);
        out.push(enrollment_from(row, enrollment_steps(tx, id).await?));
    }
    Ok(out)
}

pub async fn count_enrollments(tx: &TenantTx, sequence_id: i32, status: Option<&str>) -> Result<i64, DbError> {
    let stmt = tx
        .prepare_cached("SELECT count(*) FROM sequence_enrollments WHERE sequence_id = $1 AND ($2::text IS NULL OR status = $2)")
        .await?;
    Ok(tx.query_one(&stmt, &[&sequence_id, &status]).await?.get(0))
}

/// Stops active enrollments matching `enrollment_id` or `contact_id` (every sequence) and
/// cancels their scheduled steps; returns how many stopped.
pub async fn stop(tx: &TenantTx, enrollment_id: Option<i32>, contact_id: Option<i32>, reason: &str) -> Result<i64, DbError> {
    let stmt = tx
        .prepare_cached(
            "WITH stopped AS ( \
               UPDATE sequence_enrollments SET status = 'stopped', stop_reason = $3, stopped_at = clock_timestamp(), updated_at = clock_timestamp() \
               WHERE status = 'active' AND ($1::int IS NULL OR id = $1) AND ($2::int IS NULL OR contact_id = $2) \
                 AND ($1::int IS NOT NULL OR $2::int IS NOT NULL) RETURNING id), \
             cancelled AS ( \
               UPDATE enrollment_steps SET status = 'cancelled', done_at = clock_timestamp() \
               WHERE status = 'scheduled' AND enrollment_id IN (SELECT id FROM stopped)) \
             SELECT count(*) FROM stopped",
        )
        .await?;
    Ok(tx.query_one(&stmt, &[&enrollment_id, &contact_id, &reason]).await?.get(0))
}

/// A due step, locked by this transaction, with what sending it needs.
pub struct DueStep {
    pub enrollment_id: i32,
    pub position: i32,
    pub template_id: i32,
    pub attempts: i32,
    pub contact_id: i32,
    pub deal_id: Option<i32>,
    pub enrolled_by: Option<i32>,
    pub is_last: bool,
}

/// Claims up to `limit` due steps of active enrollments whose previous step is done
/// (`FOR UPDATE SKIP LOCKED`).
pub async fn claim_due_steps(tx: &TenantTx, limit: i64) -> Result<Vec<DueStep>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT st.enrollment_id, st.position, st.template_id, st.attempts, e.contact_id, e.deal_id, e.sequence_id, e.enrolled_by, \
             NOT EXISTS (SELECT 1 FROM enrollment_steps n WHERE n.enrollment_id = st.enrollment_id AND n.position > st.position) \
             FROM enrollment_steps st JOIN sequence_enrollments e ON e.id = st.enrollment_id \
             WHERE st.status = 'scheduled' AND st.next_attempt_at <= now() AND e.status = 'active' \
               AND NOT EXISTS (SELECT 1 FROM enrollment_steps p WHERE p.enrollment_id = st.enrollment_id AND p.position < st.position AND p.status = 'scheduled') \
             ORDER BY st.next_attempt_at LIMIT $1 FOR UPDATE OF st SKIP LOCKED",
        )
        .await?;
    Ok(tx
        .query(&stmt, &[&limit])
        .await?
        .iter()
        .map(|r| DueStep {
            enrollment_id: r.get(0),
            position: r.get(1),
            template_id: r.get(2),
            attempts: r.get(3),
            contact_id: r.get(4),
            deal_id: r.get(5),
            enrolled_by: r.get(7),
            is_last: r.get(8),
        })
        .collect())
}

/// The outcome of one attempt at a step: `sent` (with the email), `skipped` (with the
/// reason), `failed` for good, or a retry at `retry_at` (status stays `scheduled`).
pub async fn finish_step(
    tx: &TenantTx,
    step: &DueStep,
    status: &str,
    email_id: Option<i32>,
    reason: Option<&str>,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), DbError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE enrollment_steps SET status = $3::text, email_id = coalesce($4, email_id), reason = $5, last_error = $6, \
             attempts = attempts + 1, next_attempt_at = coalesce($7, next_attempt_at), \
             done_at = CASE WHEN $3::text = 'scheduled' THEN NULL ELSE clock_timestamp() END \
             WHERE enrollment_id = $1 AND position = $2",
        )
        .await?;
    tx.execute(&stmt, &[&step.enrollment_id, &step.position, &status, &email_id, &reason, &error, &retry_at]).await?;
    if status != "scheduled" && step.is_last {
        let done = tx
            .prepare_cached(
                "UPDATE sequence_enrollments SET status = 'completed', updated_at = clock_timestamp() WHERE id = $1 AND status = 'active'",
            )
            .await?;
        tx.execute(&done, &[&step.enrollment_id]).await?;
    }
    Ok(())
}
