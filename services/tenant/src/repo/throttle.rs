//! `platform.rate_limits`: the fixed-window counter of open signups per client IP.
//!
//! The same SQL as `crm_tenant::throttle::count_hit`, which still takes a raw `Transaction`
//! that a [`PlatformTx`] no longer hands out (auth-service keeps the same copy; both go
//! when `crm_tenant::throttle` takes a scoped transaction).

use crm_tenant::PlatformTx;

use super::Result;

/// Counts one hit in the current window of `window_secs` and returns the hits so far in it
/// and the seconds until the window ends (at least 1).
pub async fn count_hit(tx: &PlatformTx<'_>, bucket: &str, window_secs: i64) -> Result<(i32, i64)> {
    let stmt = tx
        .prepare_cached(
            "WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / $2::float8) * $2::float8) AS start)
             INSERT INTO platform.rate_limits (bucket, window_start, hits)
             SELECT $1, w.start, 1 FROM w
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1
             RETURNING hits, ceil(extract(epoch FROM window_start + make_interval(secs => $2::float8) - now()))::bigint",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&bucket, &(window_secs as f64)]).await?;
    Ok((row.get(0), row.get::<_, i64>(1).max(1)))
}
