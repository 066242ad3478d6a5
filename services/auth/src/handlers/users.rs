//! The `/users` endpoints: list (admin, manager), detail and basic lookups (any member,
//! services included), PATCH (self: names; admin: role, status) and the audit trail (admin).

use axum::extract::State;
use crm_client_auth::{UserAuditEntry, UserBasicInfo, UserBatch, UserDetails};
use crm_web::etag::{ETag, IfMatch, Tagged};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Caller, Can, Page, perm};

use crate::AppState;
use crate::input::{AuditParams, BatchParams, EmailParams, UserListParams, UserPatch};
use crate::service::{parse_id, users};

/// Users of the caller's tenant. Admin and manager only.
#[utoipa::path(get, path = "/api/v1/users", params(UserListParams), tag = "users",
    responses((status = 200, body = Page<UserDetails>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_users(
    State(state): State<AppState>,
    can: Can<perm::UsersRead>,
    AppQuery(params): AppQuery<UserListParams>,
) -> Result<AppJson<Page<UserDetails>>, ApiError> {
    Ok(AppJson(users::list(&state, &can, &params).await?))
}

/// A user of the caller's tenant.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i32, Path, description = "The user's id")),
    responses((status = 200, body = UserDetails, headers(("ETag" = String, description = "the record's version"))), (status = 401), (status = 403), (status = 404)))]
pub async fn get_user(
    State(state): State<AppState>,
    can: Can<perm::UsersRead>,
    AppPath(id): AppPath<String>,
) -> Result<Tagged<UserDetails>, ApiError> {
    let user = users::get(&state, &can, parse_id(&id, "user")?).await?;
    Ok(Tagged::new(ETag::of(user.updated_at), user))
}

/// Who a user is (id, email, names, role): for enrichment by other services.
#[utoipa::path(get, path = "/api/v1/users/{id}/basic", tag = "users",
    params(("id" = i32, Path, description = "The user's id")),
    responses((status = 200, body = UserBasicInfo), (status = 401), (status = 403), (status = 404)))]
pub async fn get_basic(
    State(state): State<AppState>,
    can: Can<perm::UsersRead>,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<UserBasicInfo>, ApiError> {
    Ok(AppJson(users::get_basic(&state, &can, parse_id(&id, "user")?).await?))
}

/// The users among `ids` that exist in the caller's tenant (enrichment without N+1).
#[utoipa::path(get, path = "/api/v1/users/basic", params(BatchParams), tag = "users",
    responses((status = 200, body = UserBatch), (status = 400), (status = 401), (status = 403)))]
pub async fn batch_basic(
    State(state): State<AppState>,
    can: Can<perm::UsersRead>,
    AppQuery(params): AppQuery<BatchParams>,
) -> Result<AppJson<UserBatch>, ApiError> {
    Ok(AppJson(users::batch_basic(&state, &can, &params).await?))
}

/// The user of the caller's tenant with this email, whatever their status (admin, manager
/// and services: tenant-service asks it before inviting an email). 404 when there is none.
#[utoipa::path(get, path = "/api/v1/users/by-email", params(EmailParams), tag = "users",
    responses((status = 200, body = UserDetails), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn by_email(
    State(state): State<AppState>,
    can: Can<perm::UsersRead>,
    AppQuery(params): AppQuery<EmailParams>,
) -> Result<AppJson<UserDetails>, ApiError> {
    Ok(AppJson(users::by_email(&state, &can, &params).await?))
}

/// Names (the user or an admin), role and status (an admin). Every change is audited; a
/// role or status change revokes the user's older tokens in every service at once.
#[utoipa::path(patch, path = "/api/v1/users/{id}", request_body = UserPatch, tag = "users",
    params(("id" = i32, Path, description = "The user's id")),
    responses((status = 200, body = UserDetails, headers(("ETag" = String, description = "the record's version"))), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409), (status = 412)))]
pub async fn patch_user(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(patch): AppJson<UserPatch>,
) -> Result<Tagged<UserDetails>, ApiError> {
    let user = users::update(&state, &caller, parse_id(&id, "user")?, &if_match, &patch).await?;
    Ok(Tagged::new(ETag::of(user.updated_at), user))
}

/// Who changed what of a user, newest first. Admin only.
#[utoipa::path(get, path = "/api/v1/users/{id}/audit", tag = "users",
    params(("id" = i32, Path, description = "The user's id"), AuditParams),
    responses((status = 200, body = Page<UserAuditEntry>), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn user_audit(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<AuditParams>,
) -> Result<AppJson<Page<UserAuditEntry>>, ApiError> {
    Ok(AppJson(users::audit(&state, &caller, &id, &params).await?))
}
