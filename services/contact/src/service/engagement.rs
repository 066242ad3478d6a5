//! Last contact and inactive leads (issue 15).
//!
//! * `last_contacted_at` moves forward from completed activities (`activity.logged`, the
//!   activity's `completed_at`) and sent emails (`email.sent`, the event's time):
//!   `GREATEST(existing, event time)`, so redelivered and out-of-order events are harmless.
//! * The daily inactive-lead job ([`run_due`]): per tenant with `inactive_lead_days` set, the
//!   leads and prospects with no contact for that many days (never contacted: since their
//!   creation) get one `contact.became_inactive` per inactivity period. The schedule is a row
//!   per tenant in `platform.inactive_lead_schedule`, claimed with `FOR UPDATE SKIP LOCKED`,
//!   so any number of replicas runs each tenant's job once; a failed run is retried with
//!   back-off and its error kept on the row.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use crm_client_contact::subjects::CONTACT_BECAME_INACTIVE;
use crm_events::publish_many;
use crm_runtime::Task;
use crm_tenant::{TenantDb, TenantId, TenantTx};
use crm_web::{ApiError, Can, codes, perm};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::repo::inactivity as repo;

/// Records a contact with the contact at `at` (an activity's completion, an email's
/// sending). A time in the future (a mistyped completion date) counts as `received`, the
/// time the event was published: a contact must not look recently contacted for years.
/// An unknown (deleted) contact is ignored.
pub async fn record_contacted(tx: &TenantTx, contact_id: i32, at: DateTime<Utc>, received: DateTime<Utc>) -> Result<(), ApiError> {
    repo::touch_last_contacted(tx, contact_id, at.min(received)).await?;
    Ok(())
}

/// How the inactive-lead job runs (contact-service settings).
#[derive(Debug, Clone)]
pub struct InactiveLeadConfig {
    /// How often each instance looks for due tenants (`INACTIVE_LEAD_POLL_SECS`, default 60).
    pub poll: StdDuration,
    /// Contacts published per tenant per run; more are picked up by an immediate next run
    /// (`INACTIVE_LEAD_BATCH`, default 1000).
    pub batch: i64,
    /// Tenants claimed per poll (the rest wait for the next poll).
    pub tenants_per_poll: i64,
}

impl Default for InactiveLeadConfig {
    fn default() -> Self {
        Self { poll: StdDuration::from_secs(60), batch: 1000, tenants_per_poll: 20 }
    }
}

/// The outcome of one tenant's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Published this many `contact.became_inactive`.
    Published(usize),
    /// The setting was turned off since the row was scheduled: the row is gone.
    Off,
    /// Failed; retried later.
    Failed(String),
}

/// One tenant's scan: claims the inactive leads not yet published for their period and
/// publishes one event each, in one transaction.
pub async fn scan_tenant(db: &TenantDb, tenant: &TenantId, days: i32, batch: i64, now: DateTime<Utc>) -> Result<usize, ApiError> {
    let tx = db.tenant(tenant).await?;
    let cutoff = now - Duration::days(i64::from(days));
    let found = repo::claim_inactive(&tx, cutoff, now, batch).await?;
    let events: Vec<(&str, serde_json::Value)> = found
        .iter()
        .map(|c| serde_json::to_value(c).map(|v| (CONTACT_BECAME_INACTIVE, v)))
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    publish_many(&tx, None, events).await?;
    tx.commit().await?;
    Ok(found.len())
}

/// Back-off of a failed run: 1, 2, 4 ... minutes, at most an hour.
fn retry_delay(attempts: i32) -> Duration {
    Duration::minutes(1i64 << attempts.clamp(0, 6)).min(Duration::hours(1))
}

/// The next run after one that found `found` contacts: at once when the batch was full (more
/// are waiting), else a day after the previous due time (a day from now if that has passed,
/// after downtime: one catch-up run, not one per missed day).
fn next_due(due_at: DateTime<Utc>, now: DateTime<Utc>, found: usize, batch: i64) -> DateTime<Utc> {
    if found as i64 >= batch {
        return now;
    }
    let next = due_at + Duration::days(1);
    if next <= now { now + Duration::days(1) } else { next }
}

/// One poll: claims the due tenants (skipping those another instance holds), runs each and
/// reschedules it, all under the claim. Returns each tenant's outcome.
pub async fn run_due(db: &TenantDb, config: &InactiveLeadConfig) -> Result<Vec<(TenantId, RunOutcome)>, ApiError> {
    let ptx = db.platform().await?;
    let jobs = repo::claim_due(&ptx, config.tenants_per_poll).await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let now = Utc::now();
        let Some(days) = job.days else {
            repo::job_drop(&ptx, &job.tenant_id).await?;
            outcomes.push((job.tenant_id, RunOutcome::Off));
            continue;
        };
        match scan_tenant(db, &job.tenant_id, days, config.batch, now).await {
            Ok(found) => {
                repo::job_done(&ptx, &job.tenant_id, next_due(job.due_at, now, found, config.batch), found as i32).await?;
                if found > 0 {
                    tracing::info!(tenant_id = %job.tenant_id, found, "inactive leads published");
                }
                outcomes.push((job.tenant_id, RunOutcome::Published(found)));
            }
            Err(e) => {
                let error = e.to_string();
                tracing::warn!(tenant_id = %job.tenant_id, attempts = job.attempts + 1, error, "inactive-lead run failed; retried later");
                repo::job_failed(&ptx, &job.tenant_id, now + retry_delay(job.attempts), &error).await?;
                outcomes.push((job.tenant_id, RunOutcome::Failed(error)));
            }
        }
    }
    ptx.commit().await?;
    Ok(outcomes)
}

/// The poll loop, returned from [`crate::build`] as a background task: a poll at start, then
/// every `config.poll` (the schedule in PostgreSQL is the truth; this is only the clock).
pub fn inactive_lead_task(db: TenantDb, config: InactiveLeadConfig, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Task {
    let future = async move {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            if let Err(e) = run_due(&db, &config).await {
                tracing::warn!(error = %e, "inactive-lead poll failed");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(config.poll) => {}
            }
        }
    };
    Task { name: "inactive-lead job", future: Box::pin(future) }
}

/// `GET /contacts/inactive-lead-job`: the tenant's daily inactive-lead job, so a failing or
/// stuck job is visible (the issue: automations never fail silently).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InactiveLeadJob {
    /// The tenant setting `inactive_lead_days`; `null`: the job is off.
    pub inactive_lead_days: Option<i32>,
    /// Whether the job is scheduled (on).
    pub enabled: bool,
    /// When the next run is due (a poll of any instance runs it within `INACTIVE_LEAD_POLL_SECS`).
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// `contact.became_inactive` events the last successful run published.
    pub last_found: Option<i32>,
    /// Failed runs in a row (retried with back-off: 1 minute doubling to 1 hour).
    pub attempts: i32,
    /// The error of the last failed run (`null` after a success).
    pub last_error: Option<String>,
}

async fn job_of(db: &TenantDb, tenant: &TenantId) -> Result<InactiveLeadJob, ApiError> {
    let tx = db.platform().await?;
    let row = repo::job_status(&tx, tenant).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    let (next_run_at, attempts, last_run_at, last_error, last_found) = match row.schedule {
        Some(s) => (Some(s.due_at), s.attempts, s.last_run_at, s.last_error, s.last_found),
        None => (None, 0, None, None, None),
    };
    Ok(InactiveLeadJob { inactive_lead_days: row.days, enabled: next_run_at.is_some(), next_run_at, last_run_at, last_found, attempts, last_error })
}

/// The job's state for the caller's tenant (every member who reads contacts).
pub async fn job(state: &AppState, can: &Can<perm::ContactsRead>) -> Result<InactiveLeadJob, ApiError> {
    job_of(&state.db, &can.tenant_id).await
}

/// Runs the job at the next poll (admins: `tenant: write`), e.g. right after changing the
/// setting or after fixing what made it fail. 409 `CONFLICT` when it is off.
pub async fn run_now(state: &AppState, can: &Can<perm::TenantWrite>) -> Result<InactiveLeadJob, ApiError> {
    let tx = state.db.platform().await?;
    let scheduled = repo::job_run_now(&tx, &can.tenant_id).await?;
    tx.commit().await?;
    if !scheduled {
        return Err(ApiError::conflict(codes::CONFLICT, "the inactive-lead job is off: set inactive_lead_days in the tenant settings"));
    }
    job_of(&state.db, &can.tenant_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_daily_with_one_catch_up_and_full_batches_continue() {
        let due = DateTime::parse_from_rfc3339("2026-03-28T09:00:00Z").unwrap().with_timezone(&Utc);
        let now = due + Duration::seconds(5);
        assert_eq!(next_due(due, now, 3, 1000), due + Duration::days(1));
        assert_eq!(next_due(due, now, 1000, 1000), now);
        let late = due + Duration::days(3);
        assert_eq!(next_due(due, late, 0, 1000), late + Duration::days(1));
        assert_eq!(retry_delay(0), Duration::minutes(1));
        assert_eq!(retry_delay(3), Duration::minutes(8));
        assert_eq!(retry_delay(40), Duration::hours(1));
    }
}
