//! The automation poll loop (issue 15): every instance runs one; the source of truth is the
//! database. Due rows (task reminders, sequence steps, rule runs) are claimed with
//! `FOR UPDATE SKIP LOCKED`, one per transaction, so two instances never do the same thing
//! and a crash leaves the row to the next claim.
//!
//! Cost per tick stays small with many tenants: a full sweep of the active tenants runs every
//! `sweep` (one query per tenant on partial indexes, finding its next due time); in between,
//! a tick visits only the tenants whose next due time has come and those touched by this
//! instance (a new enrollment or rule run is processed at once, not at the next sweep).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_tenant::{DbError, TenantId};
use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::AppState;
use crate::repo::unsubscribes as repo;
use crate::service::{reminders, rules, sequences};

/// How the loop paces itself (settings `AUTOMATION_POLL_MS`, `AUTOMATION_SWEEP_SECONDS`).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Between ticks.
    pub poll: Duration,
    /// Between full sweeps of every tenant.
    pub sweep: Duration,
    /// Base of the retry back-off (`AUTOMATION_RETRY_SECONDS`): attempt n waits base * 4^(n-1).
    pub retry_base: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Self { poll: Duration::from_secs(1), sweep: Duration::from_secs(30), retry_base: Duration::from_secs(60) }
    }
}

/// Attempts before a reminder or a step is `failed` and a rule run `parked`.
pub const MAX_ATTEMPTS: i32 = 5;

impl Pace {
    /// When to try again after `attempts` failed attempts; `None` after the last one.
    pub fn retry_at(&self, attempts: i32) -> Option<DateTime<Utc>> {
        if attempts >= MAX_ATTEMPTS {
            return None;
        }
        let factor = 4u32.saturating_pow(u32::try_from(attempts.max(1) - 1).unwrap_or(0));
        let wait = self.retry_base.saturating_mul(factor).min(Duration::from_secs(24 * 3600));
        Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::hours(1)))
    }
}

/// This instance's handle on the loop: tenants touched here are visited at the next tick
/// (for a few seconds, so a row committed just after the wake-up is not missed).
#[derive(Default)]
pub struct Automation {
    touched: Mutex<HashMap<TenantId, std::time::Instant>>,
    wake: Notify,
    /// Tenants' marketing consent policy (`opt_in`?), with when it was read.
    policies: Mutex<HashMap<TenantId, (std::time::Instant, bool)>>,
}

impl std::fmt::Debug for Automation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Automation").finish_non_exhaustive()
    }
}

const TOUCH_WINDOW: Duration = Duration::from_secs(5);

impl Automation {
    /// Something became due in `tenant` (call after or just before the commit).
    pub fn touch(&self, tenant: &TenantId) {
        self.touched.lock().unwrap_or_else(|e| e.into_inner()).insert(*tenant, std::time::Instant::now() + TOUCH_WINDOW);
        self.wake.notify_one();
    }

    /// The cached consent policy of `tenant` and when it was read.
    pub fn policy(&self, tenant: &TenantId) -> Option<(std::time::Instant, bool)> {
        self.policies.lock().unwrap_or_else(|e| e.into_inner()).get(tenant).copied()
    }

    pub fn set_policy(&self, tenant: &TenantId, at: std::time::Instant, opt_in: bool) {
        self.policies.lock().unwrap_or_else(|e| e.into_inner()).insert(*tenant, (at, opt_in));
    }

    /// Forgets a tenant's cached policy (`tenant.settings_updated`).
    pub fn forget_policy(&self, tenant: &TenantId) {
        self.policies.lock().unwrap_or_else(|e| e.into_inner()).remove(tenant);
    }

    fn touched(&self) -> Vec<TenantId> {
        let now = std::time::Instant::now();
        let mut map = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, until| *until > now);
        map.keys().copied().collect()
    }
}

/// Where the loop finds the tenants to sweep.
pub trait TenantSource: Send + Sync {
    fn tenants(&self) -> BoxFuture<'_, Result<Vec<TenantId>, DbError>>;
}

/// Every active tenant of the registry (production).
pub struct ActiveTenants(pub crm_tenant::TenantDb);

impl TenantSource for ActiveTenants {
    fn tenants(&self) -> BoxFuture<'_, Result<Vec<TenantId>, DbError>> {
        Box::pin(async move {
            let tx = self.0.platform().await?;
            let tenants = repo::active_tenants(&tx).await?;
            tx.commit().await?;
            Ok(tenants)
        })
    }
}

/// A fixed set of tenants (tests: only their own).
pub struct FixedTenants(pub Arc<Mutex<HashSet<TenantId>>>);

impl TenantSource for FixedTenants {
    fn tenants(&self) -> BoxFuture<'_, Result<Vec<TenantId>, DbError>> {
        let tenants = self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        Box::pin(async move { Ok(tenants) })
    }
}

/// Most items one tenant gets per visit (the rest wait for the next tick: one busy tenant
/// does not starve the others).
const PER_VISIT: usize = 50;

/// Runs the loop until `shutdown` resolves.
pub async fn run(state: AppState, source: Arc<dyn TenantSource>, shutdown: impl std::future::Future<Output = ()> + Send) {
    let pace = state.settings.automation;
    let mut next_due: HashMap<TenantId, DateTime<Utc>> = HashMap::new();
    let mut last_sweep: Option<std::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let mut visit: HashSet<TenantId> = state.automation.touched().into_iter().collect();
        if last_sweep.is_none_or(|at| at.elapsed() >= pace.sweep) {
            match source.tenants().await {
                Ok(all) => {
                    let known: HashSet<TenantId> = all.iter().copied().collect();
                    next_due.retain(|t, _| known.contains(t));
                    visit.extend(all);
                    last_sweep = Some(std::time::Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "automation: cannot list the tenants; retrying at the next tick"),
            }
        }
        let now = Utc::now();
        visit.extend(next_due.iter().filter(|(_, at)| **at <= now).map(|(t, _)| *t));
        for tenant in visit {
            match visit_tenant(&state, &tenant).await {
                Ok(Some(at)) => {
                    next_due.insert(tenant, at);
                }
                Ok(None) => {
                    next_due.remove(&tenant);
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "automation: tenant visit failed; retrying soon");
                    next_due.insert(tenant, Utc::now() + chrono::Duration::seconds(5));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pace.poll) => {}
            _ = state.automation.wake.notified() => {}
            _ = &mut shutdown => return,
        }
    }
}

/// Processes what is due in one tenant (bounded), then tells when the next thing is due.
pub async fn visit_tenant(state: &AppState, tenant: &TenantId) -> Result<Option<DateTime<Utc>>, DbError> {
    let mut done = 0;
    while done < PER_VISIT {
        let mut progressed = false;
        progressed |= reminders::process_one(state, tenant).await?;
        progressed |= sequences::process_one(state, tenant).await?;
        progressed |= rules::process_one(state, tenant).await?;
        if !progressed {
            break;
        }
        done += 1;
    }
    let tx = state.db.tenant(tenant).await?;
    let next = repo::next_due(&tx).await?;
    tx.commit().await?;
    Ok(next)
}
