//! Invitations: created by a tenant's admins and managers (and by signup, for the first
//! admin), listed, revoked, looked up by token, accepted once by auth-service.

use axum::http::StatusCode;
use chrono::Utc;
use crm_client_tenant::subjects::{TENANT_USER_INVITED, TENANT_USER_JOINED};
use crm_client_auth::{CallContext, ClientError};
use crm_client_tenant::{AcceptInvitation, InvitationInfo};
use crm_events::publish_platform;
use crm_web::pagination::{SortDir, parse_cursor, parse_sort};
use crm_web::{ApiError, Caller, Can, FieldErrors, Page, Role, codes, parse_limit, perm, validate};

use super::{ensure_member, parse_tenant_id};
use crate::AppState;
use crate::domain::{hash_token, new_token};
use crate::input::{InvitationListParams, NewInvitation};
use crate::repo::{self, InvitationCursor, InvitationInsert};

/// Invites `email` with `role` (only an admin invites an admin) and publishes
/// `tenant.user_invited` with the token (for the email sender).
pub async fn create(
    state: &AppState,
    can: &Can<perm::InvitationsWrite>,
    raw_id: &str,
    new: NewInvitation,
) -> Result<InvitationInfo, ApiError> {
    let id = parse_tenant_id(raw_id)?;
    ensure_member(can, &id)?;
    let mut errors = FieldErrors::new();
    let email = validate::email(&mut errors, "email", &new.email);
    let role = validate::member_role(&mut errors, "role", &new.role);
    errors.into_result()?;
    let Some(role) = role else { return Err(ApiError::bad_request("invalid role")) };
    if role == Role::Admin && can.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin can invite an admin"));
    }
    // Before the transaction: no pooled connection is held while auth-service answers.
    ensure_not_a_member(state, &can.ctx, &email).await?;

    let (token, token_hash) = new_token();
    let tx = state.db.platform().await?;
    repo::tenant_for_update(&tx, &id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    if repo::has_pending_invitation(&tx, &id, &email).await? {
        return Err(ApiError::conflict(codes::INVITATION_PENDING, "this email already has a pending invitation"));
    }
    let mut invitation = repo::insert_invitation(
        &tx,
        &InvitationInsert {
            id: ulid::Ulid::generate().to_string(),
            tenant_id: &id,
            email: &email,
            role: role.as_str(),
            token_hash: &token_hash,
            expires_at: Utc::now() + state.settings.invitation_ttl,
            invited_by: Some(can.user_id),
        },
    )
    .await?;
    invitation.token = Some(token);
    publish_platform(&tx, &id, Some(can.user_id.to_string()), TENANT_USER_INVITED, &invitation).await?;
    tx.commit().await?;
    Ok(invitation)
}

/// 409 `EMAIL_TAKEN` when `email` already belongs to a user of the caller's tenant (asked of
/// auth-service with the caller's token: tenant-service does not read auth's tables). When
/// auth-service cannot answer, 503: an invitation that registration would refuse is never
/// sent silently.
async fn ensure_not_a_member(state: &AppState, ctx: &CallContext, email: &str) -> Result<(), ApiError> {
    match state.users.user_by_email(ctx, email).await {
        Err(ClientError::NotFound) => Ok(()),
        Ok(user) => {
            let hint = match user.status.as_str() {
                "inactive" => " (deactivated: reactivate the user instead)",
                _ => "",
            };
            Err(ApiError::conflict(codes::EMAIL_TAKEN, format!("this email already belongs to a member of the tenant{hint}")))
        }
        Err(ClientError::Unavailable(e)) => {
            tracing::warn!(error = %e, "auth-service unavailable: invitation refused");
            Err(ApiError::unavailable("auth-service unavailable, retry later"))
        }
        Err(other) => {
            tracing::error!(error = %other, "auth-service refused the member lookup: invitation refused");
            Err(ApiError::unavailable("the member lookup failed, retry later"))
        }
    }
}

/// The tenant's invitations, newest first, by keyset pages.
pub async fn list(
    state: &AppState,
    can: &Can<perm::InvitationsRead>,
    raw_id: &str,
    params: InvitationListParams,
) -> Result<Page<InvitationInfo>, ApiError> {
    let id = parse_tenant_id(raw_id)?;
    ensure_member(can, &id)?;
    let limit = parse_limit(params.limit.as_deref())?;
    // Newest first is the only order (keyset on created_at, id): refuse any other.
    let (_, dir) = parse_sort(params.sort.as_deref(), &["created_at"], ("created_at", SortDir::Desc))?;
    if dir != SortDir::Desc {
        return Err(ApiError::validation([("sort", "must be -created_at (newest first)")]));
    }
    let after: Option<InvitationCursor> = parse_cursor(&state.cursors, params.cursor.as_deref())?;
    if let Some(status) = &params.status
        && !matches!(status.as_str(), "pending" | "accepted" | "expired" | "revoked")
    {
        return Err(ApiError::validation([("status", "must be one of: pending, accepted, expired, revoked")]));
    }
    let tx = state.db.platform().await?;
    let rows = repo::list_invitations(&tx, &id, params.status.as_deref(), after.as_ref(), limit).await?;
    let total = if params.count == Some(false) { None } else { Some(repo::count_invitations(&tx, &id, params.status.as_deref()).await?) };
    tx.commit().await?;
    let page = Page::from_overfetch(rows, limit, total, |last| {
        state.cursors.encode(&InvitationCursor { created_at: last.created_at, id: last.info.id.clone() })
    });
    Ok(Page { data: page.data.into_iter().map(|r| r.info).collect(), pagination: page.pagination })
}

/// Revokes a pending invitation (revoking a revoked one is a no-op; an accepted one is 409).
pub async fn revoke(state: &AppState, can: &Can<perm::InvitationsDelete>, raw_id: &str, invitation_id: &str) -> Result<(), ApiError> {
    let id = parse_tenant_id(raw_id)?;
    ensure_member(can, &id)?;
    let tx = state.db.platform().await?;
    let invitation = repo::invitation_by_id(&tx, &id, invitation_id).await?.ok_or_else(|| ApiError::not_found("invitation"))?;
    match invitation.status.as_str() {
        "accepted" => return Err(ApiError::conflict(codes::INVITATION_NOT_PENDING, "the invitation was already accepted")),
        "revoked" => {}
        _ => {
            repo::revoke_invitation(&tx, &id, invitation_id).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The invitation behind a token, without the token (public: the registration page).
pub async fn by_token(state: &AppState, token: &str) -> Result<InvitationInfo, ApiError> {
    let tx = state.db.platform().await?;
    let invitation = repo::invitation_by_token(&tx, &hash_token(token)).await?.ok_or_else(|| ApiError::not_found("invitation"))?;
    tx.commit().await?;
    Ok(invitation)
}

/// Accepts an invitation, exactly once, for auth-service (a service token of the
/// invitation's tenant), and publishes `tenant.user_joined`.
pub async fn accept(state: &AppState, caller: &Caller, token: &str, body: AcceptInvitation) -> Result<InvitationInfo, ApiError> {
    if caller.role != Role::Service {
        return Err(ApiError::forbidden("invitations are accepted through registration"));
    }
    let user_id = body.user_id;
    let token_hash = hash_token(token);
    let tx = state.db.platform().await?;
    let current = repo::invitation_by_token(&tx, &token_hash).await?.ok_or_else(|| ApiError::not_found("invitation"))?;
    if current.tenant_id != caller.tenant_id.to_string() {
        return Err(ApiError::not_found("invitation"));
    }
    let Some(accepted) = repo::accept_invitation(&tx, &token_hash, user_id).await? else {
        return Err(match current.status.as_str() {
            "expired" => ApiError::new(StatusCode::GONE, codes::INVITATION_EXPIRED, "the invitation has expired"),
            "pending" => ApiError::conflict(codes::INVITATION_NOT_PENDING, "the invitation was accepted meanwhile"),
            other => ApiError::conflict(codes::INVITATION_NOT_PENDING, format!("the invitation is {other}")),
        });
    };
    publish_platform(&tx, &caller.tenant_id, user_id.map(|u| u.to_string()), TENANT_USER_JOINED, &accepted).await?;
    tx.commit().await?;
    Ok(accepted)
}
