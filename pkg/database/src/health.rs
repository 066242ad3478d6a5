use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use serde::Serialize;

use crate::Lsn;

/// The database part of `/health` (seed 004's shape).
#[derive(Debug, Clone, Serialize)]
pub struct DbHealth {
    pub healthy: bool,
    /// e.g. "2.5ms"
    pub response_time: String,
    #[serde(skip)]
    pub response: Duration,
    pub stats: PoolStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The read replica (`DATABASE_READ_URL`), when one is configured. Its state does not make
    /// the service unhealthy: reads fall back to the primary while it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaHealth>,
}

/// The read replica's part of `/health`: `{"healthy": true, "in_recovery": true,
/// "serving_reads": true, "lag_bytes": 0, "lag_seconds": 0.0, "response_time": "0.8ms",
/// "stats": {..}}`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaHealth {
    /// Reachable and in recovery (a hot standby). A server that answers but is not in
    /// recovery is not a replica (a promoted standby, or a wrong URL): unhealthy, because
    /// nothing guarantees it follows the primary.
    pub healthy: bool,
    pub in_recovery: bool,
    /// Whether lag-tolerant reads go to the replica now (false while they fall back to the
    /// primary after a failure; filled in by `crm_tenant::TenantDb`).
    pub serving_reads: bool,
    /// WAL bytes the replica has still to replay: the primary's `pg_current_wal_lsn()` minus
    /// the replica's `pg_last_wal_replay_lsn()` (0 when caught up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
    /// Seconds behind: 0 when the replica has replayed all it received, else the age of the
    /// last transaction it replayed (`now() - pg_last_xact_replay_timestamp()`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    /// e.g. "0.8ms"
    pub response_time: String,
    pub stats: PoolStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct PoolStats {
    pub max_conns: usize,
    pub total_conns: usize,
    pub idle_conns: usize,
    pub acquired_conns: usize,
    pub waiting: usize,
}

impl PoolStats {
    pub fn of(pool: &Pool) -> Self {
        let s = pool.status();
        Self {
            max_conns: s.max_size,
            total_conns: s.size,
            idle_conns: s.available,
            acquired_conns: s.size.saturating_sub(s.available),
            waiting: s.waiting,
        }
    }
}

/// Checks out a connection and runs `SELECT 1`, bounded by `timeout`.
pub async fn health_check(pool: &Pool, timeout: Duration) -> DbHealth {
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        client.simple_query("SELECT 1").await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
    let response = started.elapsed();
    DbHealth {
        healthy: outcome.is_ok(),
        response_time: format!("{:.1}ms", response.as_secs_f64() * 1000.0),
        response,
        stats: PoolStats::of(pool),
        error: outcome.err(),
        replica: None,
    }
}

/// Checks the read replica: its recovery state and replay position, and the primary's
/// current WAL position for the lag in bytes (both asked at once), bounded by `timeout`.
/// `serving_reads` is left `true` for the caller to set.
pub async fn replica_health(primary: &Pool, replica: &Pool, timeout: Duration) -> ReplicaHealth {
    let started = Instant::now();
    let on_replica = async {
        let client = replica.get().await.map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, \
                 CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                 ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((row.get::<_, bool>(0), row.get::<_, Option<String>>(1), row.get::<_, Option<f64>>(2)))
    };
    let on_primary = async {
        let client = primary.get().await.ok()?;
        let row = client.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.ok()?;
        row.get::<_, String>(0).parse::<Lsn>().ok()
    };
    let outcome = tokio::time::timeout(timeout, async { futures::join!(on_replica, on_primary) })
        .await
        .map_err(|_| format!("no answer within {timeout:?}"));
    let response = started.elapsed();
    let mut health = ReplicaHealth {
        healthy: false,
        in_recovery: false,
        serving_reads: true,
        lag_bytes: None,
        lag_seconds: None,
        response_time: format!("{:.1}ms", response.as_secs_f64() * 1000.0),
        stats: PoolStats::of(replica),
        error: None,
    };
    match outcome {
        Ok((Ok((in_recovery, replayed, lag_seconds)), primary_lsn)) => {
            health.in_recovery = in_recovery;
            health.healthy = in_recovery;
            health.lag_seconds = lag_seconds.map(|s| s.max(0.0));
            let replayed = replayed.and_then(|r| r.parse::<Lsn>().ok());
            if let (Some(replayed), Some(current)) = (replayed, primary_lsn) {
                health.lag_bytes = Some(current.0.saturating_sub(replayed.0));
            }
            if !in_recovery {
                health.error = Some("not in recovery: DATABASE_READ_URL is not a streaming replica".into());
            }
        }
        Ok((Err(e), _)) | Err(e) => health.error = Some(e),
    }
    health
}
