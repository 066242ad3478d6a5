//! Fixed-window hit counters in `platform.rate_limits`, shared by every replica (signup
//! throttle of tenant-service, login failures of auth-service). The functions take any
//! scoped transaction (a [`crate::PlatformTx`] or a [`crate::TenantTx`] derefs to a
//! [`Scoped`]): the table is schema-qualified. Commit the transaction even when refusing, so
//! refused attempts count.

use crate::{DbError, Scoped};

/// Counts one hit in the current window of `window_secs` and returns the hits so far in it
/// and the seconds until the window ends (at least 1).
pub async fn count_hit(tx: &Scoped, bucket: &str, window_secs: i64) -> Result<(i32, i64), DbError> {
    let stmt = tx
        .prepare_cached(
            "WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / $2::float8) * $2::float8) AS start)
             INSERT INTO platform.rate_limits (bucket, window_start, hits)
             SELECT $1, w.start, 1 FROM w
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1
             RETURNING hits, window_start",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&bucket, &(window_secs as f64)]).await?;
    // The time left is computed here, not in RETURNING: no non-IMMUTABLE function there
    // (Citus refuses them on distributed tables; one rule for every table, issue 18).
    let start: chrono::DateTime<chrono::Utc> = row.get(1);
    let left = (start + chrono::Duration::seconds(window_secs) - chrono::Utc::now()).num_milliseconds();
    Ok((row.get(0), left.div_euclid(1000).saturating_add(i64::from(left.rem_euclid(1000) > 0)).max(1)))
}

/// The hits counted so far in the current window, without counting one (0 when none), and
/// the seconds until the window ends.
pub async fn current_hits(tx: &Scoped, bucket: &str, window_secs: i64) -> Result<(i32, i64), DbError> {
    let stmt = tx
        .prepare_cached(
            "WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / $2::float8) * $2::float8) AS start)
             SELECT coalesce((SELECT hits FROM platform.rate_limits r, w WHERE r.bucket = $1 AND r.window_start = w.start), 0),
                    ceil(extract(epoch FROM (SELECT start FROM w) + make_interval(secs => $2::float8) - now()))::bigint",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&bucket, &(window_secs as f64)]).await?;
    Ok((row.get(0), row.get::<_, i64>(1).max(1)))
}

/// Forgets every window of `bucket` (e.g. after a successful login).
pub async fn reset(tx: &Scoped, bucket: &str) -> Result<(), DbError> {
    let stmt = tx.prepare_cached("DELETE FROM platform.rate_limits WHERE bucket = $1").await?;
    tx.execute(&stmt, &[&bucket]).await?;
    Ok(())
}
