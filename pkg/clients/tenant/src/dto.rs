use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What other services need of a tenant. The tenant's schema is an internal detail: no
/// response carries it (every service derives it from the id, `crm_tenant::TenantId::schema`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantBasicInfo {
    /// ULID (26 chars)
    pub id: String,
    pub name: String,
    /// e.g. "acme" for acme.crm.example.com
    pub subdomain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantDetails {
    pub id: String,
    pub name: String,
    pub subdomain: String,
    /// active, suspended, pending
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitationInfo {
    /// ULID
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    /// admin, manager, sales_rep, viewer
    pub role: String,
    /// Present only where the holder may see it: in the response to its creation and in
    /// the `tenant.user_invited` event (for the email sender). Never in lookups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// pending, accepted, expired, revoked
    pub status: String,
}

/// Body of `POST /invitations/{token}/accept` (sent by auth-service).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AcceptInvitation {
    /// The user created for this invitation, recorded for the audit trail.
    #[serde(default)]
    pub user_id: Option<i32>,
}

/// How a tenant treats contacts without a recorded marketing consent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarketingConsentPolicy {
    /// Marketing only to contacts whose consent is `granted` (GDPR-style; the default).
    #[default]
    OptIn,
    /// Marketing to every contact unless their consent is `withdrawn` (CAN-SPAM-style).
    OptOut,
}

impl MarketingConsentPolicy {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OptIn => "opt_in",
            Self::OptOut => "opt_out",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::OptIn, Self::OptOut].into_iter().find(|p| p.as_str() == raw)
    }

    /// `true` for `opt_in` (what `crm_client_contact::MarketingConsent::allows_marketing` takes).
    pub fn is_opt_in(&self) -> bool {
        matches!(self, Self::OptIn)
    }
}

/// A tenant's settings (`GET/PATCH /tenants/{id}/settings`); a tenant that never changed them
/// has these defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantSettings {
    /// Days without contact after which a lead or prospect is inactive (1..=3650): the daily
    /// job publishes `contact.became_inactive` for it. `null` (the default): the job is off.
    pub inactive_lead_days: Option<i32>,
    /// `opt_in` (default) or `opt_out`.
    pub marketing_consent_policy: MarketingConsentPolicy,
    /// Days a deleted record stays restorable (1..=3650, default 30); reserved for the trash.
    pub trash_retention_days: i32,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self { inactive_lead_days: None, marketing_consent_policy: MarketingConsentPolicy::OptIn, trash_retention_days: 30 }
    }
}

/// Payload of `tenant.settings_updated`: the tenant and its settings after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantSettingsUpdated {
    pub tenant_id: String,
    pub settings: TenantSettings,
}
