//! Password reset tokens (`password_reset_tokens`), stored hashed.

use chrono::{DateTime, Utc};
use crm_tenant::TenantTx;

use super::Result;

pub async fn insert_reset(tx: &TenantTx, id: &str, user_id: i32, token_hash: &str, expires_at: DateTime<Utc>) -> Result<()> {
    let stmt = tx
        .prepare_cached("INSERT INTO password_reset_tokens (id, user_id, token, expires_at) VALUES ($1, $2, $3, $4)")
        .await?;
    tx.execute(&stmt, &[&id, &user_id, &token_hash, &expires_at]).await?;
    Ok(())
}

/// Whether the token is usable now (unused, unexpired), without using it.
pub async fn reset_is_valid(tx: &TenantTx, token_hash: &str) -> Result<bool> {
    let stmt = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM password_reset_tokens WHERE token = $1 AND NOT used AND expires_at > now())",
        )
        .await?;
    Ok(tx.query_one(&stmt, &[&token_hash]).await?.get(0))
}

/// Uses the token (exactly once under concurrency) and every other open token of the same
/// user; returns the user id, or `None` when the token is unknown, used or expired.
pub async fn consume_reset(tx: &TenantTx, token_hash: &str) -> Result<Option<i32>> {
    let stmt = tx
        .prepare_cached(
            "UPDATE password_reset_tokens SET used = true
             WHERE token = $1 AND NOT used AND expires_at > now() RETURNING user_id",
        )
        .await?;
    let Some(user_id) = tx.query_opt(&stmt, &[&token_hash]).await?.map(|r| r.get::<_, i32>(0)) else {
        return Ok(None);
    };
    tx.execute("UPDATE password_reset_tokens SET used = true WHERE user_id = $1 AND NOT used", &[&user_id]).await?;
    Ok(Some(user_id))
}
