//! Refresh tokens (`refresh_tokens`), stored hashed, in rotation families.

use chrono::{DateTime, Utc};
use crm_tenant::TenantTx;

use super::Result;

pub struct NewRefreshToken<'a> {
    pub jti: &'a str,
    pub token_hash: &'a str,
    pub user_id: i32,
    pub family_id: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_refresh(tx: &TenantTx, new: &NewRefreshToken<'_>) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO refresh_tokens (jti, token_hash, user_id, family_id, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(&stmt, &[&new.jti, &new.token_hash, &new.user_id, &new.family_id, &new.expires_at]).await?;
    Ok(())
}

pub struct RefreshRow {
    pub jti: String,
    pub user_id: i32,
    pub family_id: String,
    pub replaced_by: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The stored refresh token with this hash, locked (two refreshes of one token serialize:
/// the second sees it rotated).
pub async fn refresh_for_update(tx: &TenantTx, token_hash: &str) -> Result<Option<RefreshRow>> {
    let stmt = tx
        .prepare_cached(
            "SELECT jti, user_id, family_id, replaced_by, revoked_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        )
        .await?;
    Ok(tx.query_opt(&stmt, &[&token_hash]).await?.map(|r| RefreshRow {
        jti: r.get(0),
        user_id: r.get(1),
        family_id: r.get(2),
        replaced_by: r.get(3),
        revoked_at: r.get(4),
    }))
}

pub async fn mark_rotated(tx: &TenantTx, jti: &str, replaced_by: &str) -> Result<()> {
    let stmt =
        tx.prepare_cached("UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2 WHERE jti = $1").await?;
    tx.execute(&stmt, &[&jti, &replaced_by]).await?;
    Ok(())
}

/// Revokes every live token of a family; returns how many.
pub async fn revoke_family(tx: &TenantTx, family_id: &str) -> Result<u64> {
    let stmt = tx
        .prepare_cached("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL")
        .await?;
    tx.execute(&stmt, &[&family_id]).await
}

/// Revokes every live refresh token of a user (deactivation, password reset).
pub async fn revoke_user_refresh(tx: &TenantTx, user_id: i32) -> Result<u64> {
    let stmt = tx
        .prepare_cached("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
        .await?;
    tx.execute(&stmt, &[&user_id]).await
}

/// Revokes one access token by its `jti` until it expires (`platform.revoked_tokens`, read by
/// every service's revocation guard). Revoking it twice is a no-op.
pub async fn revoke_token(tx: &TenantTx, jti: &str, user_id: i32, expires_at: DateTime<Utc>) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO platform.revoked_tokens (jti, tenant_id, user_id, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (jti) DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&jti, &tx.tenant_id().to_string(), &user_id, &expires_at]).await?;
    Ok(())
}

/// Deletes a few rows of `platform.revoked_tokens` whose token has expired (they no longer
/// matter); bounded, so a logout never pays for a large backlog at once.
pub async fn purge_expired_tokens(tx: &TenantTx) -> Result<u64> {
    let stmt = tx
        .prepare_cached(
            "DELETE FROM platform.revoked_tokens WHERE jti IN
               (SELECT jti FROM platform.revoked_tokens WHERE expires_at < now() ORDER BY expires_at LIMIT 100)",
        )
        .await?;
    tx.execute(&stmt, &[]).await
}
