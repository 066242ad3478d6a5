//! Per-tenant admission (issue 14, item 4: a noisy tenant must not starve the others): at most
//! `TENANT_MAX_IN_FLIGHT` requests of one tenant are being worked on at once in a process; the
//! rest wait in arrival order (a fair `tokio` semaphore per tenant: a waiting request is a
//! parked task, it costs no CPU) for up to `TENANT_QUEUE_TIMEOUT_MS`, then get 503
//! `SERVICE_UNAVAILABLE` with `Retry-After: 1`.
//!
//! Why: the database pool (`DB_MAX_CONNECTIONS`, 20) and the runtime's run queue are shared by
//! every tenant of the process. Without a bound, a tenant with 256 requests in flight holds every
//! pooled connection and fills the run queue, and another tenant's request waits behind all of
//! them; with the bound, the other tenant finds a free connection and a short run queue.
//! The default is half the pool (a request may hold a second connection through the
//! sub-request of its enrichment), at least one.
//!
//! Admission runs after the rate limit ([`crate::rate_limit`], which calls it), so a request
//! waiting for its quota does not hold a slot, and only for requests that rate limit counts:
//! a verified bearer token of a tenant. The platform's own sub-requests (HMAC-proved) are never
//! admitted here: they are part of a request that already holds its tenant's slot, and making
//! them wait for a slot of the same tenant could deadlock.
//!
//! Several replicas: each process bounds its own in-flight requests (a bound on the work done
//! by that process, which is what protects its pool and cores); nothing is shared.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_tenant::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiError;

/// Limits on one tenant's concurrent requests in one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Requests of one tenant worked on at once (`TENANT_MAX_IN_FLIGHT`; 0 = no bound).
    pub max_in_flight: usize,
    /// How long a request waits for a slot before 503 (`TENANT_QUEUE_TIMEOUT_MS`).
    pub max_wait: Duration,
    /// Requests of one tenant waiting at once; more are answered 503 at once
    /// (`TENANT_MAX_QUEUED`): bounds the memory a flood of connections can hold.
    pub max_queued: usize,
}

impl AdmissionConfig {
    /// The defaults for a pool of `pool_size` connections: half of it in flight per tenant
    /// (at least 1), a 2 s wait, 1,024 waiting.
    pub fn for_pool(pool_size: usize) -> Self {
        Self { max_in_flight: (pool_size / 2).max(1), max_wait: Duration::from_secs(2), max_queued: 1_024 }
    }
}

/// One tenant's slots and how many of its requests wait for one.
struct Slots {
    semaphore: Arc<Semaphore>,
    queued: AtomicUsize,
}

/// The per-tenant slots of a process (shared by every router of `crm serve`, like the rate
/// limit: one process, one pool).
pub struct Admission {
    config: AdmissionConfig,
    tenants: Mutex<HashMap<TenantId, Arc<Slots>>>,
    admits: AtomicU64,
}

/// Tenants with nothing in flight are forgotten every this many admissions.
const HOUSEKEEPING_EVERY: u64 = 8_192;

/// A slot held by a request; released when dropped (when the response is produced).
pub struct Admitted {
    _permit: Option<OwnedSemaphorePermit>,
}

/// Decrements a tenant's waiting count however the wait ends (admitted, timed out, or the
/// client went away and the request future was dropped).
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    pub fn new(config: AdmissionConfig) -> Self {
        Self { config, tenants: Mutex::new(HashMap::new()), admits: AtomicU64::new(0) }
    }

    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    fn slots(&self, tenant: TenantId) -> Arc<Slots> {
        let mut tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tenants
            .entry(tenant)
            .or_insert_with(|| {
                Arc::new(Slots { semaphore: Arc::new(Semaphore::new(self.config.max_in_flight)), queued: AtomicUsize::new(0) })
            })
            .clone()
    }

    /// Waits for one of `tenant`'s slots. Errors: 503 `SERVICE_UNAVAILABLE` with
    /// `Retry-After: 1` when the wait exceeds `max_wait` or `max_queued` requests already wait.
    pub async fn admit(&self, tenant: TenantId) -> Result<Admitted, ApiError> {
        if self.config.max_in_flight == 0 {
            return Ok(Admitted { _permit: None });
        }
        if self.admits.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY == HOUSEKEEPING_EVERY - 1 {
            self.housekeeping();
        }
        let slots = self.slots(tenant);
        // Fast path: a free slot and nobody waiting (the semaphore hands released permits to
        // waiters first, so this never jumps the queue).
        if let Ok(permit) = slots.semaphore.clone().try_acquire_owned() {
            return Ok(Admitted { _permit: Some(permit) });
        }
        if slots.queued.fetch_add(1, Ordering::Relaxed) >= self.config.max_queued {
            slots.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(busy());
        }
        let _queued = Queued(&slots.queued);
        match tokio::time::timeout(self.config.max_wait, slots.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Admitted { _permit: Some(permit) }),
            // Timed out (the semaphore is never closed).
            _ => Err(busy()),
        }
    }

    /// Forgets tenants with every slot free and nobody waiting (a new request recreates them).
    fn housekeeping(&self) {
        let max = self.config.max_in_flight;
        let mut tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tenants.retain(|_, slots| {
            Arc::strong_count(slots) > 1 || slots.semaphore.available_permits() < max || slots.queued.load(Ordering::Relaxed) > 0
        });
    }

    /// Tenants currently known (tests).
    #[cfg(test)]
    fn tenants(&self) -> usize {
        self.tenants.lock().unwrap().len()
    }
}

fn busy() -> ApiError {
    ApiError::unavailable("too many requests of this tenant in progress, retry in 1 s").with_retry_after(1)
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    use super::*;

    fn admission(max_in_flight: usize, max_wait_ms: u64, max_queued: usize) -> Arc<Admission> {
        Arc::new(Admission::new(AdmissionConfig { max_in_flight, max_wait: Duration::from_millis(max_wait_ms), max_queued }))
    }

    #[tokio::test]
    async fn a_tenant_past_its_slots_waits_in_order_and_other_tenants_do_not() {
        let admission = admission(2, 5_000, 10);
        let (busy, other) = (TenantId::new(), TenantId::new());
        let first = admission.admit(busy).await.unwrap();
        let _second = admission.admit(busy).await.unwrap();
        // Another tenant is admitted at once while `busy` has no slot left.
        let _other = tokio::time::timeout(Duration::from_millis(100), admission.admit(other)).await.unwrap().unwrap();
        // Two waiters of `busy`: the first to ask is the first admitted.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for n in 0..2 {
            let (shared, order) = (admission.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let slot = shared.admit(busy).await.unwrap();
                order.lock().unwrap().push(n);
                slot
            }));
            until(|| admission.slots(busy).queued.load(Ordering::Relaxed) == n + 1).await;
        }
        drop(first);
        let slot = waiters.remove(0).await.unwrap();
        assert_eq!(*order.lock().unwrap(), vec![0]);
        drop(slot);
        let _slot = waiters.remove(0).await.unwrap();
        assert_eq!(*order.lock().unwrap(), vec![0, 1]);
        assert_eq!(admission.slots(busy).queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_wait_past_the_timeout_or_the_queue_bound_is_503_with_retry_after() {
        let admission = admission(1, 200, 1);
        let tenant = TenantId::new();
        let _held = admission.admit(tenant).await.unwrap();
        let started = std::time::Instant::now();
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit(tenant).await.map(|_| ()) })
        };
        until(|| admission.slots(tenant).queued.load(Ordering::Relaxed) == 1).await;
        // The queue holds one: the next is refused without waiting for a slot.
        let refused = tokio::time::timeout(Duration::from_millis(100), admission.admit(tenant)).await.unwrap().err().unwrap();
        let response = refused.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        // The waiter gives up after the timeout, not before.
        let timed_out = waiting.await.unwrap().err().unwrap();
        assert_eq!(timed_out.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
        assert_eq!(admission.slots(tenant).queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn no_bound_admits_everything_and_idle_tenants_are_forgotten() {
        let unbounded = admission(0, 0, 0);
        let tenant = TenantId::new();
        let held: Vec<_> = futures::future::join_all((0..100).map(|_| unbounded.admit(tenant))).await;
        assert!(held.iter().all(Result::is_ok));
        assert_eq!(unbounded.tenants(), 0, "nothing is kept when there is no bound");

        let bounded = admission(4, 1_000, 10);
        let busy = TenantId::new();
        let slot = bounded.admit(busy).await.unwrap();
        for _ in 0..10 {
            drop(bounded.admit(TenantId::new()).await.unwrap());
        }
        bounded.housekeeping();
        assert_eq!(bounded.tenants(), 1, "only the tenant holding a slot is kept");
        drop(slot);
        bounded.housekeeping();
        assert_eq!(bounded.tenants(), 0);
    }

    /// Yields until `condition` holds (waiters register when first polled).
    async fn until(condition: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if condition() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("condition not reached");
    }
}
