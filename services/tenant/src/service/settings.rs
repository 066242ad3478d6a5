//! Tenant settings: read by every member (and service tokens of the tenant), changed by its
//! admins with `If-Match`; each change publishes `tenant.settings_updated`.

use chrono::{DateTime, Utc};
use crm_client_tenant::subjects::TENANT_SETTINGS_UPDATED;
use crm_client_tenant::{MarketingConsentPolicy, TenantSettings, TenantSettingsUpdated};
use crm_events::publish_platform;
use crm_web::etag::{ETag, IfMatch};
use crm_web::{Action, ApiError, FieldErrors, Principal, Resource};

use super::{ensure_member, parse_tenant_id};
use crate::AppState;
use crate::input::TenantSettingsPatch;
use crate::repo;

/// Range of the day counts (`inactive_lead_days`, `trash_retention_days`): up to ten years.
pub const DAYS: std::ops::RangeInclusive<i32> = 1..=3650;

/// The settings and their version; members of the tenant and the platform operator.
pub async fn get(state: &AppState, principal: &Principal, raw_id: &str) -> Result<(TenantSettings, DateTime<Utc>), ApiError> {
    let id = parse_tenant_id(raw_id)?;
    if let Principal::User(user) = principal {
        ensure_member(user, &id)?;
        user.require(Resource::Tenant, Action::Read)?;
    }
    let tx = state.db.platform().await?;
    let found = repo::settings(&tx, &id, false).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    Ok(found)
}

/// Applies the fields given (admins: `tenant: write`; or the platform operator), checks
/// `If-Match`, turns the inactive-lead schedule on or off and publishes
/// `tenant.settings_updated`, in one transaction. Every bad field is named in one 400.
pub async fn update(
    state: &AppState,
    principal: &Principal,
    raw_id: &str,
    if_match: &IfMatch,
    patch: TenantSettingsPatch,
) -> Result<(TenantSettings, DateTime<Utc>), ApiError> {
    let id = parse_tenant_id(raw_id)?;
    let actor = match principal {
        Principal::Operator => "platform_operator".to_owned(),
        Principal::User(user) => {
            ensure_member(user, &id)?;
            user.require(Resource::Tenant, Action::Write)?;
            user.user_id.to_string()
        }
    };
    let mut errors = FieldErrors::new();
    if let Some(Some(days)) = patch.inactive_lead_days {
        errors.check("inactive_lead_days", DAYS.contains(&days), "must be 1 to 3650 days, or null (off)");
    }
    let policy = patch.marketing_consent_policy.as_deref().map(|raw| {
        let parsed = MarketingConsentPolicy::parse(raw);
        errors.check("marketing_consent_policy", parsed.is_some(), "must be opt_in or opt_out");
        parsed.unwrap_or_default()
    });
    if let Some(days) = patch.trash_retention_days {
        errors.check("trash_retention_days", DAYS.contains(&days), "must be 1 to 3650 days");
    }
    if patch.inactive_lead_days.is_none() && policy.is_none() && patch.trash_retention_days.is_none() {
        errors.add("inactive_lead_days", "nothing to update: give inactive_lead_days, marketing_consent_policy and/or trash_retention_days");
    }
    errors.into_result()?;

    let tx = state.db.platform().await?;
    let (mut settings, version) = repo::settings(&tx, &id, true).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    if_match.check(&ETag::of(version))?;
    if let Some(days) = patch.inactive_lead_days {
        settings.inactive_lead_days = days;
    }
    if let Some(policy) = policy {
        settings.marketing_consent_policy = policy;
    }
    if let Some(days) = patch.trash_retention_days {
        settings.trash_retention_days = days;
    }
    let version = repo::save_settings(&tx, &id, &settings).await?;
    repo::schedule_inactive_leads(&tx, &id, settings.inactive_lead_days.is_some()).await?;
    let event = TenantSettingsUpdated { tenant_id: id.to_string(), settings: settings.clone() };
    publish_platform(&tx, &id, Some(actor), TENANT_SETTINGS_UPDATED, event).await?;
    tx.commit().await?;
    Ok((settings, version))
}
