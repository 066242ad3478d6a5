use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use serde::Serialize;

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
    }
}
