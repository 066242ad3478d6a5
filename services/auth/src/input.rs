//! The request bodies and query strings of auth-service's API (the response DTOs are in
//! `crm_client_auth`). Checked by the service layer, which names the offending fields.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub invitation_token: String,
    /// 8 to 128 characters.
    pub password: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The tenant's subdomain (or id), when the request's address does not name it.
    pub tenant: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    pub email: String,
    /// The tenant's subdomain (or id), when the request's address does not name it.
    pub tenant: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordResetConfirm {
    pub token: String,
    pub new_password: String,
}

/// The answer of a password reset request (the same whether or not the account exists).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AcceptedBody {
    pub message: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// admin, manager, sales_rep, viewer
    pub role: Option<String>,
    /// active, inactive, pending
    pub status: Option<String>,
    /// Part of the email or full name, case-insensitive.
    pub search: Option<String>,
    /// `id`, `email`, `last_name`, `created_at`; `-` in front for descending. Default `id`.
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// `false` omits `total_count`.
    pub count: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchParams {
    /// Comma-separated user ids, at most 500.
    pub ids: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailParams {
    /// The email address, case-insensitive.
    pub email: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only `-changed_at` (newest first, the default): any other value is 400.
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// Query of `GET /audit` (issue 16): every filter optional, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditLogParams {
    /// The kind of record: contact, company, deal, user, tenant, activity, task, email, ...
    pub resource: Option<String>,
    /// The record's id (with `resource`: one record's history).
    pub resource_id: Option<String>,
    /// Who made the change: a user id (or `signup`, `platform_operator`, a service name).
    pub actor: Option<String>,
    /// Changes at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Changes before this time (RFC 3339, exclusive).
    pub to: Option<String>,
    /// Page size, 1-100 (default 20).
    pub limit: Option<String>,
    /// `pagination.next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// PATCH /users/{id}: names (the user or an admin), role and status (an admin).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// admin only: admin, manager, sales_rep, viewer
    pub role: Option<String>,
    /// admin only: active, inactive
    pub status: Option<String>,
}
