//! One-click unsubscribes of marketing emails, and the tenants the scheduler sweeps.

use crm_tenant::{DbError, PlatformTx, TenantId, TenantTx};

/// The marketing email an unsubscribe link points at (any email of the tenant with the
/// `marketing` flag).
pub async fn marketing_email(tx: &TenantTx, email_id: i32) -> Result<Option<(Option<i32>, String)>, DbError> {
    let stmt = tx.prepare_cached("SELECT contact_id, email_address FROM email_tracking WHERE id = $1 AND marketing").await?;
    Ok(tx.query_opt(&stmt, &[&email_id]).await?.map(|r| (r.get(0), r.get(1))))
}

/// Records the unsubscribe; `false` when this email's link was used before.
pub async fn record(tx: &TenantTx, email_id: i32, contact_id: Option<i32>, address: &str) -> Result<bool, DbError> {
    let stmt = tx
        .prepare_cached("INSERT INTO unsubscribes (email_id, contact_id, email_address) VALUES ($1, $2, $3) ON CONFLICT (email_id) DO NOTHING")
        .await?;
    Ok(tx.execute(&stmt, &[&email_id, &contact_id, &address]).await? == 1)
}

/// Whether the address unsubscribed from any marketing email of the tenant (a guard that
/// holds even before contact-service recorded the withdrawn consent).
pub async fn address_unsubscribed(tx: &TenantTx, address: &str) -> Result<bool, DbError> {
    let stmt = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM unsubscribes WHERE lower(email_address) = lower($1))").await?;
    Ok(tx.query_one(&stmt, &[&address]).await?.get(0))
}

/// Every active tenant (the scheduler's sweep).
pub async fn active_tenants(tx: &PlatformTx) -> Result<Vec<TenantId>, DbError> {
    let rows = tx.query("SELECT id FROM tenants WHERE status = 'active' ORDER BY id", &[]).await?;
    Ok(rows.iter().filter_map(|r| TenantId::parse(r.get::<_, &str>(0)).ok()).collect())
}

/// When the next scheduled thing of the tenant is due (reminder, sequence step, rule run),
/// in one round trip on the partial indexes.
pub async fn next_due(tx: &TenantTx) -> Result<Option<chrono::DateTime<chrono::Utc>>, DbError> {
    let stmt = tx
        .prepare_cached(
            "SELECT least( \
               (SELECT min(next_attempt_at) FROM task_reminders WHERE status = 'scheduled'), \
               (SELECT min(next_attempt_at) FROM enrollment_steps WHERE status = 'scheduled'), \
               (SELECT min(next_attempt_at) FROM automation_runs WHERE status IN ('pending', 'failed')))",
        )
        .await?;
    Ok(tx.query_one(&stmt, &[]).await?.get(0))
}
