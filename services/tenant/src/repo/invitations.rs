//! `platform.invitations`. Tokens are stored only as their hash.

use chrono::{DateTime, Utc};
use crm_client_tenant::InvitationInfo;
use crm_tenant::{PlatformTx, TenantId};
use tokio_postgres::Row;

use super::Result;

/// Status of an invitation, derived from its timestamps at read time.
const INVITATION_STATUS: &str = "CASE WHEN accepted_at IS NOT NULL THEN 'accepted' \
     WHEN revoked_at IS NOT NULL THEN 'revoked' \
     WHEN expires_at <= now() THEN 'expired' ELSE 'pending' END";

/// `invitation` columns plus the derived status.
fn invitation_columns() -> String {
    format!("id, tenant_id, email, role, expires_at, {INVITATION_STATUS} AS status, created_at")
}

/// An invitation row as the API shows it (no token: only its hash is stored).
pub struct InvitationRow {
    pub info: InvitationInfo,
    pub created_at: DateTime<Utc>,
}

fn invitation_from(row: &Row) -> InvitationRow {
    InvitationRow {
        info: InvitationInfo {
            id: row.get(0),
            tenant_id: row.get(1),
            email: row.get(2),
            role: row.get(3),
            token: None,
            expires_at: row.get(4),
            status: row.get(5),
        },
        created_at: row.get(6),
    }
}

/// The row written for a new invitation (already checked by the service).
pub struct InvitationInsert<'a> {
    pub id: String,
    pub tenant_id: &'a TenantId,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a str,
    pub expires_at: DateTime<Utc>,
    pub invited_by: Option<i32>,
}

pub async fn insert_invitation(tx: &PlatformTx, new: &InvitationInsert<'_>) -> Result<InvitationInfo> {
    let sql = format!(
        "INSERT INTO platform.invitations (id, tenant_id, email, role, token_hash, expires_at, invited_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {}",
        invitation_columns()
    );
    let row = tx
        .query_one(
            sql.as_str(),
            &[&new.id, &new.tenant_id.to_string(), &new.email, &new.role, &new.token_hash, &new.expires_at, &new.invited_by],
        )
        .await?;
    Ok(invitation_from(&row).info)
}

/// Whether `email` already has a pending invitation in the tenant.
pub async fn has_pending_invitation(tx: &PlatformTx, tenant_id: &TenantId, email: &str) -> Result<bool> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM platform.invitations WHERE tenant_id = $1 AND email = $2
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now())",
            &[&tenant_id.to_string(), &email],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn invitation_by_token(tx: &PlatformTx, token_hash: &str) -> Result<Option<InvitationInfo>> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {} FROM platform.invitations WHERE token_hash = $1", invitation_columns()))
        .await?;
    Ok(tx.query_opt(&stmt, &[&token_hash]).await?.as_ref().map(|r| invitation_from(r).info))
}

/// Locks the row for the rest of the transaction.
pub async fn invitation_by_id(tx: &PlatformTx, tenant_id: &TenantId, id: &str) -> Result<Option<InvitationInfo>> {
    let sql = format!("SELECT {} FROM platform.invitations WHERE tenant_id = $1 AND id = $2 FOR UPDATE", invitation_columns());
    Ok(tx.query_opt(sql.as_str(), &[&tenant_id.to_string(), &id]).await?.as_ref().map(|r| invitation_from(r).info))
}

/// Marks a pending invitation accepted; `None` when it is not pending (anymore). The
/// conditional update makes acceptance exactly-once under concurrency.
pub async fn accept_invitation(tx: &PlatformTx, token_hash: &str, user_id: Option<i32>) -> Result<Option<InvitationInfo>> {
    let sql = format!(
        "UPDATE platform.invitations SET accepted_at = now(), accepted_user_id = $2
         WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         RETURNING {}",
        invitation_columns()
    );
    Ok(tx.query_opt(sql.as_str(), &[&token_hash, &user_id]).await?.as_ref().map(|r| invitation_from(r).info))
}

pub async fn revoke_invitation(tx: &PlatformTx, tenant_id: &TenantId, id: &str) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE platform.invitations SET revoked_at = now()
             WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
            &[&tenant_id.to_string(), &id],
        )
        .await?;
    Ok(n == 1)
}

/// Keyset position of the invitation list (newest first).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct InvitationCursor {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// Up to `limit + 1` rows (the extra one tells whether there is a next page).
pub async fn list_invitations(
    tx: &PlatformTx,
    tenant_id: &TenantId,
    status: Option<&str>,
    after: Option<&InvitationCursor>,
    limit: i64,
) -> Result<Vec<InvitationRow>> {
    let sql = format!(
        "SELECT {cols} FROM platform.invitations
         WHERE tenant_id = $1 AND ($2::text IS NULL OR {INVITATION_STATUS} = $2)
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5",
        cols = invitation_columns()
    );
    let (after_at, after_id) = (after.map(|c| c.created_at), after.map(|c| c.id.as_str()));
    let rows = tx.query(sql.as_str(), &[&tenant_id.to_string(), &status, &after_at, &after_id, &(limit + 1)]).await?;
    Ok(rows.iter().map(invitation_from).collect())
}

pub async fn count_invitations(tx: &PlatformTx, tenant_id: &TenantId, status: Option<&str>) -> Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM platform.invitations WHERE tenant_id = $1 AND ($2::text IS NULL OR {INVITATION_STATUS} = $2)"
    );
    Ok(tx.query_one(sql.as_str(), &[&tenant_id.to_string(), &status]).await?.get(0))
}
