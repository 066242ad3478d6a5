//! Users of the caller's tenant: the caller's own profile, the list (admin, manager), detail
//! and basic lookups (any member, services included), changes (self: names; admin: role,
//! status; every change audited, access changes revoke older tokens) and the audit trail.

use axum::http::StatusCode;
use crm_client_auth::subjects::{USER_DEACTIVATED, USER_UPDATED};
use crm_client_auth::{MeResponse, UserAuditEntry, UserBasicInfo, UserBatch, UserDetails};
use crm_web::etag::{ETag, IfMatch};
use crm_web::pagination::{SortDir, parse_cursor, parse_sort};
use crm_web::permissions::permissions_for;
use crm_web::{Action, ApiError, Caller, Can, FieldErrors, Page, Resource, Role, codes, parse_limit, perm, validate};
use serde::{Deserialize, Serialize};

use super::parse_id;
use crate::AppState;
use crate::domain::{MAX_NAME, basic, check_status, like_pattern};
use crate::input::{AuditParams, BatchParams, EmailParams, UserListParams, UserPatch};
use crate::repo::sessions;
use crate::repo::users::{self, SortKey, UserCursor, UserFilter, UserForUpdate};

#[derive(Serialize, Deserialize)]
struct AuditCursor {
    id: i64,
}

fn not_found() -> ApiError {
    ApiError::not_found("user")
}

/// The caller's profile and permissions.
pub async fn me(state: &AppState, caller: &Caller) -> Result<MeResponse, ApiError> {
    let tx = state.db.tenant(&caller.tenant_id).await?;
    let details = users::user_by_id(&tx, caller.user_id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    let role = details.role.parse::<Role>().unwrap_or(caller.role);
    Ok(MeResponse { permissions: permissions_for(role), user: details })
}

/// Users of the caller's tenant. Every member reads users, but only admin and manager list
/// them.
pub async fn list(state: &AppState, can: &Can<perm::UsersRead>, params: &UserListParams) -> Result<Page<UserDetails>, ApiError> {
    if !matches!(can.role, Role::Admin | Role::Manager) {
        return Err(ApiError::forbidden(format!("role {} may not list users", can.role)));
    }
    let limit = parse_limit(params.limit.as_deref())?;
    let (sort, dir) = parse_sort(params.sort.as_deref(), &SortKey::NAMES, ("id", SortDir::Asc))?;
    let key = SortKey::parse(sort).ok_or_else(|| ApiError::internal("sort whitelist out of sync"))?;
    let sort_param = format!("{}{sort}", if dir == SortDir::Desc { "-" } else { "" });
    let after: Option<UserCursor> = parse_cursor(&state.cursors, params.cursor.as_deref())?;
    if after.as_ref().is_some_and(|c| c.sort != sort_param) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_CURSOR, "the cursor belongs to another sort"));
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
        errors.check("search", validate::is_single_line(term), "must be a single line without control characters");
    }
    errors.into_result()?;
    let pattern = search.map(like_pattern);
    let filter = UserFilter { role: params.role.as_deref(), status: params.status.as_deref(), search: pattern.as_deref() };

    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = users::list_users(&tx, &filter, key, dir == SortDir::Desc, after.as_ref(), limit).await?;
    let total = if params.count == Some(false) { None } else { Some(users::count_users(&tx, &filter).await?) };
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&users::cursor_after(&sort_param, key, last))))
}

pub async fn get(state: &AppState, can: &Can<perm::UsersRead>, id: i32) -> Result<UserDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = users::user_by_id(&tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(found)
}

pub async fn get_basic(state: &AppState, can: &Can<perm::UsersRead>, id: i32) -> Result<UserBasicInfo, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = users::users_basic(&tx, &[id]).await?.pop().ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(found)
}

/// The user with this email (any status), for admins, managers and services (tenant-service
/// refuses to invite a member's email with it).
pub async fn by_email(state: &AppState, can: &Can<perm::UsersRead>, params: &EmailParams) -> Result<UserDetails, ApiError> {
    if !matches!(can.role, Role::Admin | Role::Manager | Role::Service) {
        return Err(ApiError::forbidden(format!("role {} may not look users up by email", can.role)));
    }
    let mut errors = FieldErrors::new();
    let email = validate::email(&mut errors, "email", &params.email);
    errors.into_result()?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let found = users::user_by_email(&tx, &email).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(found)
}

/// The users among `ids` that exist in the caller's tenant (enrichment without N+1).
pub async fn batch_basic(state: &AppState, can: &Can<perm::UsersRead>, params: &BatchParams) -> Result<UserBatch, ApiError> {
    let ids = validate::batch_ids("ids", params.ids.as_deref())?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let data = users::users_basic(&tx, &ids).await?;
    tx.commit().await?;
    Ok(UserBatch { data })
}

/// Names (the user or an admin), role and status (an admin, `users: write`). Every change is
/// audited; a role or status change revokes the user's older tokens in every service at
/// once; the tenant's last active admin stays one.
pub async fn update(state: &AppState, actor: &Caller, id: i32, if_match: &IfMatch, patch: &UserPatch) -> Result<UserDetails, ApiError> {
    let is_admin = actor.role == Role::Admin;
    let names = patch.first_name.is_some() || patch.last_name.is_some();
    let access = patch.role.is_some() || patch.status.is_some();
    if names && !(is_admin || actor.user_id == id) {
        return Err(ApiError::forbidden("only the user or an admin changes a user's name"));
    }
    if access {
        // Which fields are changed decides the permission: it cannot be in the signature.
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

    let tx = state.db.tenant(&actor.tenant_id).await?;
    // Admin rows first, in id order, then the target: concurrent demotions serialize.
    let admins = if access { users::lock_active_admins(&tx).await? } else { Vec::new() };
    let current = users::user_for_update(&tx, id).await?.ok_or_else(not_found)?;
    if_match.check(&ETag::of(current.updated_at))?;

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
        return Err(ApiError::conflict(codes::LAST_ADMIN, "the tenant's last active admin cannot be demoted or deactivated"));
    }
    let changes = [
        ("first_name", update.first_name, current.first_name.as_str()),
        ("last_name", update.last_name, current.last_name.as_str()),
        ("role", update.role, current.role.as_str()),
        ("status", update.status, current.status.as_str()),
    ];
    if changes.iter().all(|(_, new, _)| new.is_none()) {
        tx.commit().await?;
        return Ok(current);
    }
    let updated = users::update_user(&tx, id, &update).await?;
    for (field, new, old) in changes {
        if let Some(new) = new {
            users::insert_audit(&tx, id, Some(actor.user_id), field, Some(old), Some(new)).await?;
        }
    }
    let deactivated = update.status == Some("inactive");
    if update.role.is_some() || update.status.is_some() {
        users::record_revocation(&tx, id, updated.status == "inactive").await?;
    }
    if deactivated {
        sessions::revoke_user_refresh(&tx, id).await?;
    }
    // `changes` (old -> new per field) for the tenant's audit log, from the locked row.
    let mut data = serde_json::to_value(basic(&updated)).map_err(ApiError::internal)?;
    data["changes"] = crm_events::changes(&current, &updated, &["updated_at", "created_at", "last_login_at"]).map_err(ApiError::internal)?;
    crm_events::publish(&tx, Some(actor.user_id), USER_UPDATED, data).await?;
    if deactivated {
        crm_events::publish(&tx, Some(actor.user_id), USER_DEACTIVATED, basic(&updated)).await?;
    }
    tx.commit().await?;
    if update.role.is_some() || update.status.is_some() {
        tracing::info!(security_event = "user_access_changed", user = id, actor = actor.user_id,
            role = update.role, status = update.status, "role or status changed; older tokens revoked");
    }
    Ok(updated)
}

/// Who changed what of a user, newest first. Admin only; the role is checked before the
/// id (`raw_id`) is looked at, so a non-admin learns nothing about ids.
pub async fn audit(state: &AppState, caller: &Caller, raw_id: &str, params: &AuditParams) -> Result<Page<UserAuditEntry>, ApiError> {
    if caller.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin reads the audit trail"));
    }
    let id = parse_id(raw_id, "user")?;
    let limit = parse_limit(params.limit.as_deref())?;
    // Newest first is the only order (keyset on the entry id): refuse any other.
    let (_, dir) = parse_sort(params.sort.as_deref(), &["changed_at"], ("changed_at", SortDir::Desc))?;
    if dir != SortDir::Desc {
        return Err(ApiError::validation([("sort", "must be -changed_at (newest first)")]));
    }
    let after: Option<AuditCursor> = parse_cursor(&state.cursors, params.cursor.as_deref())?;
    let tx = state.db.tenant(&caller.tenant_id).await?;
    users::user_by_id(&tx, id).await?.ok_or_else(not_found)?;
    let rows = users::list_audit(&tx, id, after.map(|c| c.id), limit).await?;
    let total = users::count_audit(&tx, id).await?;
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, Some(total), |last| state.cursors.encode(&AuditCursor { id: last.id })))
}
