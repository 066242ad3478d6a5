//! Lag-tolerant reads on a streaming replica (`DATABASE_READ_URL`, issue 14 item 4), and the
//! rule that keeps a user's reads consistent with that user's own writes.
//!
//! # The rule: read your own writes, by WAL position
//!
//! A write commits on the primary; the replica shows it once it has replayed the WAL up to the
//! commit. So a commit made while serving a request is followed, in the same round trip, by
//! `pg_current_wal_insert_lsn()` (at or past the commit record), and that position is kept:
//!
//! * in the request ([`RequestReads::written`]), which the runtime sends back as the `Crm-Lsn`
//!   response header and cookie; a client that sends it back (header `Crm-Lsn`, or the
//!   cookie, which browsers do by themselves) gets reads at least that fresh from any process
//!   of any service, whichever replica it reads;
//! * per process, for the writing user, for [`RECENT_WRITE_TTL`]: clients that send nothing
//!   back (scripts, other services on the user's behalf) still read their writes when their
//!   next request reaches the same process (every request of `crm serve`).
//!
//! A read ([`crate::TenantDb::tenant_read`]) asks the replica, in the same round trip as its
//! `BEGIN READ ONLY`, how far it has replayed (`pg_last_wal_replay_lsn()`); when that is short
//! of the newest position the request knows of, the read is served by the primary instead
//! (no waiting: the primary answers now, waiting would add the replica's lag to the request).
//! Positions are the cluster's, so this holds across replicas and processes; it was preferred
//! to "primary for N seconds after a write", which is wrong both ways (a lagging replica past
//! N, needless primary reads before).
//!
//! # Fallback
//!
//! A replica that cannot be reached (connect, pool, or `BEGIN` fails) is left alone for
//! [`REPLICA_RETRY_AFTER`]: reads go to the primary meanwhile, logged once per failure.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crm_database::{Lsn, Pool};

use crate::TenantId;

/// How long a user's write keeps that user's reads (in this process) at least as fresh as
/// the write. Past it, a replica that still has not replayed the write is lagging far beyond
/// what `/health` tolerates; the time only bounds the memory of the map.
pub const RECENT_WRITE_TTL: Duration = Duration::from_secs(60);

/// After a failure to reach the replica, reads go to the primary for this long before the
/// replica is tried again (so a replica that is down costs one failed connect per period,
/// not one per read).
pub const REPLICA_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Entries of the per-process map past which expired ones are swept (on insert).
const RECENT_SWEEP_AT: usize = 4_096;

/// The user a request acts for: its tenant and user id (from the verified access token).
pub type UserKey = (TenantId, i32);

tokio::task_local! {
    static REQUEST: Arc<RequestReads>;
}

/// The read replica of a [`crate::TenantDb`]: its pool, the recent writes of users, and
/// whether it is being avoided after a failure.
pub(crate) struct Replica {
    pub(crate) pool: Pool,
    recent: Mutex<HashMap<UserKey, (Lsn, Instant)>>,
    /// `Instant` (as nanoseconds since `epoch`) until which reads skip the replica; 0 = none.
    avoid_until: AtomicU64,
    epoch: Instant,
    /// Whether the last attempt failed (to log the failure once, and the recovery).
    failing: AtomicBool,
    /// Reads served by the primary because the replica had not replayed far enough.
    pub(crate) behind: AtomicU64,
}

impl Replica {
    pub(crate) fn new(pool: Pool) -> Self {
        Self {
            pool,
            recent: Mutex::new(HashMap::new()),
            avoid_until: AtomicU64::new(0),
            epoch: Instant::now(),
            failing: AtomicBool::new(false),
            behind: AtomicU64::new(0),
        }
    }

    /// Whether reads skip the replica now (a recent failure).
    pub(crate) fn avoided(&self) -> bool {
        let until = self.avoid_until.load(Ordering::Relaxed);
        until != 0 && (self.epoch.elapsed().as_nanos() as u64) < until
    }

    /// A failure to reach the replica: reads go to the primary for [`REPLICA_RETRY_AFTER`].
    pub(crate) fn failed(&self, error: &dyn std::fmt::Display) {
        let until = (self.epoch.elapsed() + REPLICA_RETRY_AFTER).as_nanos() as u64;
        self.avoid_until.store(until, Ordering::Relaxed);
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %error, retry_after_s = REPLICA_RETRY_AFTER.as_secs(), "read replica unavailable: lag-tolerant reads fall back to the primary");
        } else {
            tracing::debug!(error = %error, "read replica still unavailable");
        }
    }

    /// A successful read on the replica (logs the recovery after a failure).
    pub(crate) fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("read replica reachable again: lag-tolerant reads go to it");
        }
    }

    /// The newest write position known for `user` in this process, if recent.
    fn recent(&self, user: &UserKey) -> Option<Lsn> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.get(user).filter(|(_, at)| at.elapsed() < RECENT_WRITE_TTL).map(|(lsn, _)| *lsn)
    }

    fn record(&self, user: UserKey, lsn: Lsn) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= RECENT_SWEEP_AT {
            recent.retain(|_, (_, at)| at.elapsed() < RECENT_WRITE_TTL);
        }
        let entry = recent.entry(user).or_insert((lsn, Instant::now()));
        *entry = (entry.0.max(lsn), Instant::now());
    }
}

/// What one HTTP request knows about the freshness its reads need: who it acts for, the
/// position its client sent (`Crm-Lsn`), and the position of its own commits. Made by
/// [`crate::TenantDb::request_reads`] (only when a replica is configured) and installed
/// around the request's handler with [`RequestReads::scope`] by the runtime's middleware.
pub struct RequestReads {
    replica: Arc<Replica>,
    user: Option<UserKey>,
    after: Option<Lsn>,
    /// The newest commit position of this request (0 = none).
    written: AtomicU64,
}

impl RequestReads {
    pub(crate) fn new(replica: Arc<Replica>, user: Option<UserKey>, after: Option<Lsn>) -> Self {
        Self { replica, user, after, written: AtomicU64::new(0) }
    }

    /// Runs `f` (the request's handler) with this request's read rule in force: its commits
    /// are recorded, its lag-tolerant reads are at least as fresh as what it knows of.
    pub async fn scope<F: Future>(self: Arc<Self>, f: F) -> F::Output {
        REQUEST.scope(self, f).await
    }

    /// The position of this request's newest commit on the primary (`None`: it wrote nothing),
    /// for the `Crm-Lsn` response header.
    pub fn written(&self) -> Option<Lsn> {
        match self.written.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Lsn(n)),
        }
    }

    /// The position a replica must have replayed to serve this request's reads.
    fn needed(&self) -> Option<Lsn> {
        let own = self.written();
        let recent = self.user.as_ref().and_then(|u| self.replica.recent(u));
        [self.after, own, recent].into_iter().flatten().max()
    }

    fn record(&self, lsn: Lsn) {
        self.written.fetch_max(lsn.0, Ordering::Relaxed);
        if let Some(user) = self.user {
            self.replica.record(user, lsn);
        }
    }
}

/// Whether the current task serves a request that tracks its commits (a replica is configured).
pub(crate) fn tracking() -> bool {
    REQUEST.try_with(|_| ()).is_ok()
}

/// Records a commit position in the current request (no-op outside one).
pub(crate) fn record_commit(lsn: Lsn) {
    let _ = REQUEST.try_with(|r| r.record(lsn));
}

/// The position the current request's reads need (`None` outside a request, or when it
/// knows of no write).
pub(crate) fn needed() -> Option<Lsn> {
    REQUEST.try_with(|r| r.needed()).ok().flatten()
}
