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
