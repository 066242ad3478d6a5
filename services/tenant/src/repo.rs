//! All SQL of tenant-service. Tables live in schema `platform`; every function takes the
//! caller's transaction, so the caller owns atomicity (signup = row + schema + invitation +
//! events, all or nothing).

use chrono::{DateTime, Utc};
use crm_client_tenant::{InvitationInfo, TenantDetails};
use crm_tenant::TenantId;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

pub type Tx<'a> = Transaction<'a>;

const TENANT_COLUMNS: &str = "id, name, subdomain, schema_name, status, created_at, updated_at";

/// Status of an invitation, derived from its timestamps at read time.
const INVITATION_STATUS: &str = "CASE WHEN accepted_at IS NOT NULL THEN 'accepted' \
     WHEN revoked_at IS NOT NULL THEN 'revoked' \
     WHEN expires_at <= now() THEN 'expired' ELSE 'pending' END";

fn tenant_from(row: &Row) -> TenantDetails {
    TenantDetails {
        id: row.get(0),
        name: row.get(1),
        subdomain: row.get(2),
        schema_name: row.get(3),
        status: row.get(4),
        created_at: row.get(5),
        updated_at: row.get(6),
    }
}

pub async fn insert_tenant(tx: &Tx<'_>, id: &TenantId, name: &str, subdomain: &str) -> Result<TenantDetails, tokio_postgres::Error> {
    let sql = format!(
        "INSERT INTO platform.tenants (id, name, subdomain, schema_name) VALUES ($1, $2, $3, $4) RETURNING {TENANT_COLUMNS}"
    );
    let row = tx.query_one(&sql, &[&id.to_string(), &name, &subdomain, &id.schema().as_str()]).await?;
    Ok(tenant_from(&row))
}

pub async fn tenant_by_id(tx: &Tx<'_>, id: &TenantId) -> Result<Option<TenantDetails>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(&format!("SELECT {TENANT_COLUMNS} FROM platform.tenants WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id.to_string()]).await?.as_ref().map(tenant_from))
}

pub async fn tenant_by_subdomain(tx: &Tx<'_>, subdomain: &str) -> Result<Option<TenantDetails>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(&format!("SELECT {TENANT_COLUMNS} FROM platform.tenants WHERE subdomain = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&subdomain]).await?.as_ref().map(tenant_from))
}

/// Locks the row for the rest of the transaction (PATCH and DELETE read, check, write).
pub async fn tenant_for_update(tx: &Tx<'_>, id: &TenantId) -> Result<Option<TenantDetails>, tokio_postgres::Error> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM platform.tenants WHERE id = $1 FOR UPDATE");
    Ok(tx.query_opt(&sql, &[&id.to_string()]).await?.as_ref().map(tenant_from))
}

pub async fn update_tenant(
    tx: &Tx<'_>,
    id: &TenantId,
    name: Option<&str>,
    status: Option<&str>,
) -> Result<TenantDetails, tokio_postgres::Error> {
    let sql = format!(
        "UPDATE platform.tenants SET name = coalesce($2, name), status = coalesce($3, status), updated_at = now()
         WHERE id = $1 RETURNING {TENANT_COLUMNS}"
    );
    Ok(tenant_from(&tx.query_one(&sql, &[&id.to_string(), &name, &status]).await?))
}

pub async fn delete_tenant(tx: &Tx<'_>, id: &TenantId) -> Result<(), tokio_postgres::Error> {
    // Invitations go with the row (ON DELETE CASCADE).
    tx.execute("DELETE FROM platform.tenants WHERE id = $1", &[&id.to_string()]).await?;
    Ok(())
}

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

pub struct NewInvitation<'a> {
    pub id: String,
    pub tenant_id: &'a TenantId,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a str,
    pub expires_at: DateTime<Utc>,
    pub invited_by: Option<i32>,
}

pub async fn insert_invitation(tx: &Tx<'_>, new: &NewInvitation<'_>) -> Result<InvitationInfo, tokio_postgres::Error> {
    let sql = format!(
        "INSERT INTO platform.invitations (id, tenant_id, email, role, token_hash, expires_at, invited_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {}",
        invitation_columns()
    );
    let row = tx
        .query_one(
            &sql,
            &[&new.id, &new.tenant_id.to_string(), &new.email, &new.role, &new.token_hash, &new.expires_at, &new.invited_by],
        )
        .await?;
    Ok(invitation_from(&row).info)
}

/// Whether `email` already has a pending invitation in the tenant.
pub async fn has_pending_invitation(tx: &Tx<'_>, tenant_id: &TenantId, email: &str) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM platform.invitations WHERE tenant_id = $1 AND email = $2
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now())",
            &[&tenant_id.to_string(), &email],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn invitation_by_token(tx: &Tx<'_>, token_hash: &str) -> Result<Option<InvitationInfo>, tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {} FROM platform.invitations WHERE token_hash = $1", invitation_columns()))
        .await?;
    Ok(tx.query_opt(&stmt, &[&token_hash]).await?.as_ref().map(|r| invitation_from(r).info))
}

pub async fn invitation_by_id(tx: &Tx<'_>, tenant_id: &TenantId, id: &str) -> Result<Option<InvitationInfo>, tokio_postgres::Error> {
    let sql = format!("SELECT {} FROM platform.invitations WHERE tenant_id = $1 AND id = $2 FOR UPDATE", invitation_columns());
    Ok(tx.query_opt(&sql, &[&tenant_id.to_string(), &id]).await?.as_ref().map(|r| invitation_from(r).info))
}

/// Marks a pending invitation accepted; `None` when it is not pending (anymore). The
/// conditional update makes acceptance exactly-once under concurrency.
pub async fn accept_invitation(
    tx: &Tx<'_>,
    token_hash: &str,
    user_id: Option<i32>,
) -> Result<Option<InvitationInfo>, tokio_postgres::Error> {
    let sql = format!(
        "UPDATE platform.invitations SET accepted_at = now(), accepted_user_id = $2
         WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         RETURNING {}",
        invitation_columns()
    );
    Ok(tx.query_opt(&sql, &[&token_hash, &user_id]).await?.as_ref().map(|r| invitation_from(r).info))
}

pub async fn revoke_invitation(tx: &Tx<'_>, tenant_id: &TenantId, id: &str) -> Result<bool, tokio_postgres::Error> {
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

pub async fn list_invitations(
    tx: &Tx<'_>,
    tenant_id: &TenantId,
    status: Option<&str>,
    after: Option<&InvitationCursor>,
    limit: i64,
) -> Result<Vec<InvitationRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {cols} FROM platform.invitations
         WHERE tenant_id = $1 AND ($2::text IS NULL OR {INVITATION_STATUS} = $2)
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5",
        cols = invitation_columns()
    );
    let (after_at, after_id) = (after.map(|c| c.created_at), after.map(|c| c.id.as_str()));
    let rows = tx.query(&sql, &[&tenant_id.to_string(), &status, &after_at, &after_id, &(limit + 1)]).await?;
    Ok(rows.iter().map(invitation_from).collect())
}

pub async fn count_invitations(tx: &Tx<'_>, tenant_id: &TenantId, status: Option<&str>) -> Result<i64, tokio_postgres::Error> {
    let sql = format!(
        "SELECT count(*) FROM platform.invitations WHERE tenant_id = $1 AND ($2::text IS NULL OR {INVITATION_STATUS} = $2)"
    );
    Ok(tx.query_one(&sql, &[&tenant_id.to_string(), &status]).await?.get(0))
}

/// Takes the oldest spare schema for a signup in this transaction (it returns to the pool if
/// the transaction rolls back). `SKIP LOCKED`: concurrent signups take different spares.
pub async fn take_spare(tx: &Tx<'_>) -> Result<Option<TenantId>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "DELETE FROM platform.spare_schemas WHERE tenant_id =
               (SELECT tenant_id FROM platform.spare_schemas ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)
             RETURNING tenant_id",
            &[],
        )
        .await?;
    Ok(row.and_then(|r| TenantId::parse(r.get(0)).ok()))
}

pub async fn insert_spare(tx: &Tx<'_>, id: &TenantId) -> Result<(), tokio_postgres::Error> {
    tx.execute("INSERT INTO platform.spare_schemas (tenant_id) VALUES ($1)", &[&id.to_string()]).await?;
    Ok(())
}

pub async fn count_spares(tx: &Tx<'_>) -> Result<i64, tokio_postgres::Error> {
    Ok(tx.query_one("SELECT count(*) FROM platform.spare_schemas", &[]).await?.get(0))
}
