//! The `/users` endpoints: list (admin, manager), detail (any member), basic lookups (any
//! member, services included), PATCH (self: names; admin: role, status) and the audit trail.

use axum::extract::State;
use axum::http::StatusCode;
use crm_client_auth::{UserAuditEntry, UserBasicInfo, UserBatch, UserDetails};
use crm_web::pagination::{SortDir, parse_cursor, parse_sort};
use crm_web::{Action, ApiError, AppJson, AppPath, AppQuery, FieldErrors, Page, Resource, Role, parse_limit};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::domain::{MAX_NAME, check_status, like_pattern};
use crm_web::validate;
use crate::handlers::publish;
use crate::repo::{self, SortKey, UserCursor, UserFilter, UserForUpdate, basic};
use crate::tenancy::Member;

pub const LAST_ADMIN: &str = "LAST_ADMIN";

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
pub struct AuditParams {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

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

#[derive(Serialize, Deserialize)]
struct AuditCursor {
    id: i64,
}

/// Path ids that cannot exist are "not found", like ids of other tenants.
fn user_id(raw: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::not_found("user"))
}

/// Users of the caller's tenant. Admin and manager only.
#[utoipa::path(get, path = "/api/v1/users", params(UserListParams), tag = "users",
    responses((status = 200, body = Page<UserDetails>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_users(
    State(state): State<AppState>,
    Member(user): Member,
    AppQuery(params): AppQuery<UserListParams>,
) -> Result<AppJson<Page<UserDetails>>, ApiError> {
    user.require(Resource::Users, Action::Read)?;
    if !matches!(user.role, Role::Admin | Role::Manager) {
        return Err(ApiError::forbidden(format!("role {} may not list users", user.role)));
    }
    let limit = parse_limit(params.limit.as_deref())?;
    let (sort, dir) = parse_sort(params.sort.as_deref(), &SortKey::NAMES, ("id", SortDir::Asc))?;
    let key = SortKey::parse(sort).ok_or_else(|| ApiError::internal("sort whitelist out of sync"))?;
    let sort_param = format!("{}{sort}", if dir == SortDir::Desc { "-" } else { "" });
    let after: Option<UserCursor> = parse_cursor(&state.cursors, params.cursor.as_deref())?;
    if after.as_ref().is_some_and(|c| c.sort != sort_param) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, crm_web::codes::INVALID_CURSOR, "the cursor belongs to another sort"));
    }
    let mut errors = FieldErrors::new();
    if let Some(role) = &params.role {
        validate::member_role(&mut errors, "role", role);
    }
    if let Some(status) = &params.status {
        errors.check("status", matches!(status.as_str(), "active" | "inactive" | "pending"), "must be one of: active, inactive, pending");
    }
    let search = params.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(term) = search {
        errors.check("search", term.chars().count() <= 100, "must be at most 100 characters");
    }
    errors.into_result()?;
    let pattern = search.map(like_pattern);
    let filter = UserFilter { role: params.role.as_deref(), status: params.status.as_deref(), search: pattern.as_deref() };

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let rows = repo::list_users(&tx, &filter, key, dir == SortDir::Desc, after.as_ref(), limit).await?;
    let total = if params.count == Some(false) { None } else { Some(repo::count_users(&tx, &filter).await?) };
    tx.commit().await?;
    Ok(AppJson(Page::from_overfetch(rows, limit, total, |last| {
        state.cursors.encode(&repo::cursor_after(&sort_param, key, last))
    })))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    responses((status = 200, body = UserDetails), (status = 401), (status = 404)))]
pub async fn get_user(State(state): State<AppState>, Member(user): Member, AppPath(id): AppPath<String>) -> Result<AppJson<UserDetails>, ApiError> {
    user.require(Resource::Users, Action::Read)?;
    let id = user_id(&id)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let found = repo::user_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    tx.commit().await?;
    Ok(AppJson(found))
}

#[utoipa::path(get, path = "/api/v1/users/{id}/basic", tag = "users",
    responses((status = 200, body = UserBasicInfo), (status = 401), (status = 404)))]
pub async fn get_basic(State(state): State<AppState>, Member(user): Member, AppPath(id): AppPath<String>) -> Result<AppJson<UserBasicInfo>, ApiError> {
    user.require(Resource::Users, Action::Read)?;
    let id = user_id(&id)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let found = repo::users_basic(&tx, &[id]).await?.pop().ok_or_else(|| ApiError::not_found("user"))?;
    tx.commit().await?;
    Ok(AppJson(found))
}

/// The users among `ids` that exist in the caller's tenant (enrichment without N+1).
#[utoipa::path(get, path = "/api/v1/users/basic", params(BatchParams), tag = "users",
    responses((status = 200, body = UserBatch), (status = 400), (status = 401)))]
pub async fn batch_basic(State(state): State<AppState>, Member(user): Member, AppQuery(params): AppQuery<BatchParams>) -> Result<AppJson<UserBatch>, ApiError> {
    user.require(Resource::Users, Action::Read)?;
    let ids = validate::batch_ids("ids", params.ids.as_deref())?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let data = repo::users_basic(&tx, &ids).await?;
    tx.commit().await?;
    Ok(AppJson(UserBatch { data }))
}

/// Names (the user or an admin), role and status (an admin). Every change is audited; a
/// role or status change revokes the user's older tokens in every service at once.
#[utoipa::path(patch, path = "/api/v1/users/{id}", request_body = UserPatch, tag = "users",
    responses((status = 200, body = UserDetails), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn patch_user(
    State(state): State<AppState>,
    Member(actor): Member,
    AppPath(id): AppPath<String>,
    AppJson(patch): AppJson<UserPatch>,
) -> Result<AppJson<UserDetails>, ApiError> {
    let id = user_id(&id)?;
    let is_admin = actor.role == Role::Admin;
    let names = patch.first_name.is_some() || patch.last_name.is_some();
    let access = patch.role.is_some() || patch.status.is_some();
    if names && !(is_admin || actor.user_id == id) {
        return Err(ApiError::forbidden("only the user or an admin changes a user's name"));
    }
    if access {
        actor.require(Resource::Users, Action::Write)?;
    }
    let mut errors = FieldErrors::new();
    let first_name = patch.first_name.as_deref().map(|n| validate::text(&mut errors, "first_name", n, MAX_NAME));
    let last_name = patch.last_name.as_deref().map(|n| validate::text(&mut errors, "last_name", n, MAX_NAME));
    let role = patch.role.as_deref().and_then(|r| validate::member_role(&mut errors, "role", r));
    let status = patch.status.as_deref().and_then(|s| check_status(&mut errors, s));
    if !names && !access {
        errors.add("body", "nothing to update: give first_name, last_name, role and/or status");
    }
    errors.into_result()?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&actor.tenant_id).await?;
    // Admin rows first, in id order, then the target: concurrent demotions serialize.
    let admins = if access { repo::lock_active_admins(&tx).await? } else { Vec::new() };
    let current = repo::user_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("user"))?;

    fn changed<'a>(new: Option<&'a str>, old: &str) -> Option<&'a str> {
        new.filter(|n| *n != old)
    }
    let update = UserForUpdate {
        first_name: changed(first_name.as_deref(), &current.first_name),
        last_name: changed(last_name.as_deref(), &current.last_name),
        role: changed(role.map(|r| r.as_str()), &current.role),
        status: changed(status.as_deref(), &current.status),
    };
    let loses_admin = current.role == Role::Admin.as_str()
        && current.status == "active"
        && (update.role.is_some() || update.status.is_some_and(|s| s != "active"));
    if loses_admin && admins.iter().all(|a| *a == id) {
        return Err(ApiError::conflict(LAST_ADMIN, "the tenant's last active admin cannot be demoted or deactivated"));
    }
    let changes = [
        ("first_name", update.first_name, current.first_name.as_str()),
        ("last_name", update.last_name, current.last_name.as_str()),
        ("role", update.role, current.role.as_str()),
        ("status", update.status, current.status.as_str()),
    ];
    if changes.iter().all(|(_, new, _)| new.is_none()) {
        tx.commit().await?;
        return Ok(AppJson(current));
    }
    let updated = repo::update_user(&tx, id, &update).await?;
    for (field, new, old) in changes {
        if let Some(new) = new {
            repo::insert_audit(&tx, id, Some(actor.user_id), field, Some(old), Some(new)).await?;
        }
    }
    let deactivated = update.status == Some("inactive");
    if update.role.is_some() || update.status.is_some() {
        repo::record_revocation(&tx, id, updated.status == "inactive").await?;
    }
    if deactivated {
        repo::revoke_user_refresh(&tx, id).await?;
    }
    publish(&tx, "user.updated", Some(actor.user_id), basic(&updated)).await?;
    if deactivated {
        publish(&tx, "user.deactivated", Some(actor.user_id), basic(&updated)).await?;
    }
    tx.commit().await?;
    if update.role.is_some() || update.status.is_some() {
        tracing::info!(security_event = "user_access_changed", user = id, actor = actor.user_id,
            role = update.role, status = update.status, "role or status changed; older tokens revoked");
    }
    Ok(AppJson(updated))
}

/// Who changed what of a user, newest first. Admin only.
#[utoipa::path(get, path = "/api/v1/users/{id}/audit", params(AuditParams), tag = "users",
    responses((status = 200, body = Page<UserAuditEntry>), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn user_audit(
    State(state): State<AppState>,
    Member(user): Member,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<AuditParams>,
) -> Result<AppJson<Page<UserAuditEntry>>, ApiError> {
    if user.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin reads the audit trail"));
    }
    let id = user_id(&id)?;
    let limit = parse_limit(params.limit.as_deref())?;
    let after: Option<AuditCursor> = parse_cursor(&state.cursors, params.cursor.as_deref())?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    repo::user_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let rows = repo::list_audit(&tx, id, after.map(|c| c.id), limit).await?;
    let total = repo::count_audit(&tx, id).await?;
    tx.commit().await?;
    Ok(AppJson(Page::from_overfetch(rows, limit, Some(total), |last| state.cursors.encode(&AuditCursor { id: last.id }))))
}
