//! Request bodies and query strings of tenant-service (write inputs: `NewX` to create,
//! `XPatch` to change part of one).

use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};

/// `POST /tenants`: sign up a tenant.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTenant {
    pub name: String,
    /// 3-63 characters of `[a-z0-9-]`, not starting or ending with `-`, not reserved.
    pub subdomain: String,
    pub admin_email: String,
}

/// `PATCH /tenants/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub name: Option<String>,
    /// `active` or `suspended`; platform operator only.
    pub status: Option<String>,
}

/// `POST /tenants/{id}/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewInvitation {
    pub email: String,
    /// admin, manager, sales_rep, viewer
    pub role: String,
}

/// `GET /tenants/{id}/invitations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationListParams {
    /// pending, accepted, expired, revoked
    pub status: Option<String>,
    /// Only `-created_at` (newest first, the default): any other value is 400.
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// `false` omits `total_count`.
    pub count: Option<bool>,
}

/// `Option<Option<T>>` for PATCH bodies: absent = keep, `null` = clear, value = set.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /tenants/{id}/settings`: only the fields given change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettingsPatch {
    /// 1..=3650 days; `null` turns the daily inactive-lead job off.
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 3650)]
    pub inactive_lead_days: Option<Option<i32>>,
    /// `opt_in` or `opt_out`.
    pub marketing_consent_policy: Option<String>,
    /// 1..=3650 days.
    #[schema(minimum = 1, maximum = 3650)]
    pub trash_retention_days: Option<i32>,
}
