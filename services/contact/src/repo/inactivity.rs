//! Last contact and inactive leads: `contacts.last_contacted_at` (kept from
//! `activity.logged`/`email.sent`), the inactive-lead scan of one tenant, and the platform
//! schedule (`platform.inactive_lead_schedule`, global V8) the daily job is claimed from.

use chrono::{DateTime, Utc};
use crm_client_contact::{ContactBecameInactive, ContactStatus};
use crm_tenant::{DbError, PlatformTx, TenantId, TenantTx};

use super::DbResult;

/// Moves `last_contacted_at` forward to `at` (never back: `GREATEST`), so a redelivered or
/// late event changes nothing. Returns whether the contact exists. `updated_at` is left
/// alone: the field is derived, and a logged call must not turn an editor's version stale.
pub async fn touch_last_contacted(tx: &TenantTx, contact_id: i32, at: DateTime<Utc>) -> DbResult<bool> {
    let stmt = tx
        .prepare_cached(
            "UPDATE contacts SET last_contacted_at = greatest(last_contacted_at, $2)
             WHERE id = $1",
        )
        .await?;
    Ok(tx.execute(&stmt, &[&contact_id, &at]).await? == 1)
}

/// Marks up to `limit` leads/prospects inactive since `cutoff` (their last contact, or their
/// creation, at or before it) and not yet published for this inactivity period, and returns
/// them. One run per tenant at a time (the schedule row is claimed for the whole run), so a
/// locked contact is another writer's (a consumer recomputing its score, an edit): the run
/// waits for it (`FOR UPDATE`, not `SKIP LOCKED`, which missed such a lead for a whole day).
/// Contacts in the trash (issue 16) are not leads anyone works on: skipped.
pub async fn claim_inactive(tx: &TenantTx, cutoff: DateTime<Utc>, now: DateTime<Utc>, limit: i64) -> DbResult<Vec<ContactBecameInactive>> {
    let stmt = tx
        .prepare_cached(
            "WITH due AS (
                 SELECT id FROM contacts
                 WHERE status IN ('lead', 'prospect') AND coalesce(last_contacted_at, created_at) <= $1 AND deleted_at IS NULL
                   AND inactivity_notified_for IS DISTINCT FROM coalesce(last_contacted_at, created_at)
                 ORDER BY id LIMIT $2 FOR UPDATE)
             UPDATE contacts c SET inactivity_notified_for = coalesce(c.last_contacted_at, c.created_at)
             FROM due WHERE c.id = due.id
             RETURNING c.id, c.owner_id, c.first_name, c.last_name, coalesce(c.email, ''), c.status, c.last_contacted_at,
                 coalesce(c.last_contacted_at, c.created_at)",
        )
        .await?;
    let rows = tx.query(&stmt, &[&cutoff, &limit]).await?;
    let mut found: Vec<ContactBecameInactive> = rows
        .iter()
        .map(|r| {
            let since: DateTime<Utc> = r.get(7);
            let status: String = r.get(5);
            ContactBecameInactive {
                contact_id: r.get(0),
                owner_id: r.get(1),
                first_name: r.get(2),
                last_name: r.get(3),
                email: r.get(4),
                status: ContactStatus::parse(&status).unwrap_or(ContactStatus::Lead),
                last_contacted_at: r.get(6),
                inactive_days: (now - since).num_days(),
            }
        })
        .collect();
    found.sort_by_key(|c| c.contact_id);
    Ok(found)
}

/// A tenant whose inactive-lead job is due, claimed (row-locked until `tx` ends).
#[derive(Debug, Clone)]
pub struct DueJob {
    pub tenant_id: TenantId,
    /// The tenant's `inactive_lead_days` now (`None`: turned off since it was scheduled).
    pub days: Option<i32>,
    pub due_at: DateTime<Utc>,
    pub attempts: i32,
}

/// Claims up to `limit` due jobs, oldest first; jobs other instances hold are skipped. The
/// setting is read with the claim (one query: the due index, then the settings row).
pub async fn claim_due(tx: &PlatformTx, limit: i64) -> DbResult<Vec<DueJob>> {
    let rows = tx
        .query(
            "SELECT j.tenant_id, s.inactive_lead_days, j.due_at, j.attempts
             FROM platform.inactive_lead_schedule j LEFT JOIN platform.tenant_settings s ON s.tenant_id = j.tenant_id
             WHERE j.due_at <= now() ORDER BY j.due_at LIMIT $1 FOR UPDATE OF j SKIP LOCKED",
            &[&limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id: String = r.get(0);
            let tenant_id = TenantId::parse(&id).map_err(|_| DbError::Refused("a schedule row names an invalid tenant id"))?;
            Ok(DueJob { tenant_id, days: r.get(1), due_at: r.get(2), attempts: r.get(3) })
        })
        .collect()
}

/// After a successful run: next due at `next`, failures reset.
pub async fn job_done(tx: &PlatformTx, tenant: &TenantId, next: DateTime<Utc>, found: i32) -> DbResult<()> {
    tx.execute(
        "UPDATE platform.inactive_lead_schedule SET due_at = $2, attempts = 0, last_error = NULL, last_run_at = now(), last_found = $3
         WHERE tenant_id = $1",
        &[&tenant.to_string(), &next, &found],
    )
    .await?;
    Ok(())
}

/// After a failed run: retried at `retry_at`, the error kept for operators.
pub async fn job_failed(tx: &PlatformTx, tenant: &TenantId, retry_at: DateTime<Utc>, error: &str) -> DbResult<()> {
    tx.execute(
        "UPDATE platform.inactive_lead_schedule SET due_at = $2, attempts = attempts + 1, last_error = $3, last_run_at = now()
         WHERE tenant_id = $1",
        &[&tenant.to_string(), &retry_at, &error],
    )
    .await?;
    Ok(())
}

/// The job was turned off (or the tenant is gone) since the row was written.
pub async fn job_drop(tx: &PlatformTx, tenant: &TenantId) -> DbResult<()> {
    tx.execute("DELETE FROM platform.inactive_lead_schedule WHERE tenant_id = $1", &[&tenant.to_string()]).await?;
    Ok(())
}

/// The tenant's inactive-lead job as the API shows it: the setting, and the schedule row when
/// the job is on.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub days: Option<i32>,
    /// `None` when the job is off.
    pub schedule: Option<ScheduleRow>,
}

/// A row of `platform.inactive_lead_schedule`.
#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub due_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_found: Option<i32>,
}

const JOB_ROW: &str = "SELECT s.inactive_lead_days, j.due_at, j.attempts, j.last_run_at, j.last_error, j.last_found
     FROM platform.tenants t
     LEFT JOIN platform.tenant_settings s ON s.tenant_id = t.id
     LEFT JOIN platform.inactive_lead_schedule j ON j.tenant_id = t.id
     WHERE t.id = $1";

fn job_row(r: &tokio_postgres::Row) -> JobRow {
    let due: Option<DateTime<Utc>> = r.get(1);
    let schedule = due.map(|due_at| ScheduleRow { due_at, attempts: r.get(2), last_run_at: r.get(3), last_error: r.get(4), last_found: r.get(5) });
    JobRow { days: r.get(0), schedule }
}

pub async fn job_status(tx: &PlatformTx, tenant: &TenantId) -> DbResult<Option<JobRow>> {
    Ok(tx.query_opt(JOB_ROW, &[&tenant.to_string()]).await?.as_ref().map(job_row))
}

/// Makes a scheduled job due now (the next poll of any instance runs it); `false` when the
/// job is off (no schedule row).
pub async fn job_run_now(tx: &PlatformTx, tenant: &TenantId) -> DbResult<bool> {
    let n = tx
        .execute("UPDATE platform.inactive_lead_schedule SET due_at = least(due_at, now()) WHERE tenant_id = $1", &[&tenant.to_string()])
        .await?;
    Ok(n == 1)
}
