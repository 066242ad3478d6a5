//! `platform.tenant_settings` (a tenant without a row has the defaults) and the rows of
//! `platform.inactive_lead_schedule` that turning the inactive-lead job on or off adds or
//! removes (contact-service runs the job).

use chrono::{DateTime, Utc};
use crm_client_tenant::{MarketingConsentPolicy, TenantSettings};
use crm_tenant::{PlatformTx, TenantId};
use tokio_postgres::Row;

use super::Result;

fn settings_from(row: &Row) -> (TenantSettings, DateTime<Utc>) {
    let policy: String = row.get(1);
    let settings = TenantSettings {
        inactive_lead_days: row.get(0),
        // The CHECK constraint admits only the two policies.
        marketing_consent_policy: MarketingConsentPolicy::parse(&policy).unwrap_or_default(),
        trash_retention_days: row.get(2),
    };
    (settings, row.get(3))
}

/// The tenant's settings and their version (`updated_at`, or the tenant's `created_at` while
/// it has the defaults); `None` when the tenant does not exist. `lock` takes the tenant row
/// (PATCH reads, checks the version and writes under it).
pub async fn settings(tx: &PlatformTx, id: &TenantId, lock: bool) -> Result<Option<(TenantSettings, DateTime<Utc>)>> {
    let sql = format!(
        "SELECT s.inactive_lead_days, coalesce(s.marketing_consent_policy, 'opt_in'), coalesce(s.trash_retention_days, 30), \
                coalesce(s.updated_at, t.created_at) \
         FROM platform.tenants t LEFT JOIN platform.tenant_settings s ON s.tenant_id = t.id WHERE t.id = $1{}",
        if lock { " FOR UPDATE OF t" } else { "" }
    );
    Ok(tx.query_opt(sql.as_str(), &[&id.to_string()]).await?.as_ref().map(settings_from))
}

/// Writes all settings; returns the new version. `clock_timestamp()`: two changes in one
/// transaction still get different versions.
pub async fn save_settings(tx: &PlatformTx, id: &TenantId, s: &TenantSettings) -> Result<DateTime<Utc>> {
    let row = tx
        .query_one(
            "INSERT INTO platform.tenant_settings AS s (tenant_id, inactive_lead_days, marketing_consent_policy, trash_retention_days, updated_at) \
             VALUES ($1, $2, $3, $4, clock_timestamp()) \
             ON CONFLICT (tenant_id) DO UPDATE SET inactive_lead_days = EXCLUDED.inactive_lead_days, \
                marketing_consent_policy = EXCLUDED.marketing_consent_policy, \
                trash_retention_days = EXCLUDED.trash_retention_days, \
                updated_at = greatest(EXCLUDED.updated_at, s.updated_at + interval '1 microsecond') \
             RETURNING updated_at",
            &[&id.to_string(), &s.inactive_lead_days, &s.marketing_consent_policy.as_str(), &s.trash_retention_days],
        )
        .await?;
    Ok(row.get(0))
}

/// The inactive-lead job on: due now unless it is already scheduled (a changed number of days
/// applies from the next run). Off: the schedule row goes.
pub async fn schedule_inactive_leads(tx: &PlatformTx, id: &TenantId, on: bool) -> Result<()> {
    if on {
        tx.execute(
            "INSERT INTO platform.inactive_lead_schedule (tenant_id, due_at) VALUES ($1, now()) ON CONFLICT (tenant_id) DO NOTHING",
            &[&id.to_string()],
        )
        .await?;
    } else {
        tx.execute("DELETE FROM platform.inactive_lead_schedule WHERE tenant_id = $1", &[&id.to_string()]).await?;
    }
    Ok(())
}
