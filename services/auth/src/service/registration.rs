//! Registration by invitation: tenant-service's invitation names the tenant, the email and
//! the role; the user is created, the invitation accepted and a session issued, in one
//! transaction of the tenant.

use axum::http::StatusCode;
use crm_client_auth::LoginResponse;
use crm_client_auth::subjects::USER_CREATED;
use crm_client_tenant::{CallContext, ClientError, InvitationInfo};
use crm_tenant::{DbError, TenantId};
use crm_web::{ApiError, FieldErrors, Role, codes, validate};

use super::public_context;
use super::sessions::{issue_session, service_token};
use crate::AppState;
use crate::domain::{MAX_NAME, basic, check_password};
use crate::input::RegisterRequest;
use crate::repo::users::{self, NewUser};
use crate::tenancy::active_tenant;

/// tenant-service's answers about an invitation, as this API tells them.
fn invitation_error(err: ClientError) -> ApiError {
    match err {
        ClientError::NotFound => ApiError::new(StatusCode::NOT_FOUND, codes::INVITATION_NOT_FOUND, "invitation not found: check the link"),
        ClientError::Invalid { status: 410, .. } => {
            ApiError::new(StatusCode::GONE, codes::INVITATION_EXPIRED, "the invitation has expired: ask for a new one")
        }
        ClientError::Invalid { status: 409, .. } => ApiError::conflict(codes::INVITATION_NOT_PENDING, "the invitation was already used"),
        ClientError::Unavailable(e) => {
            tracing::warn!(error = %e, "tenant-service unavailable");
            ApiError::unavailable("tenant-service unavailable, retry later")
        }
        other => ApiError::internal(format!("tenant-service refused an invitation call: {other}")),
    }
}

fn check_invitation(invitation: &InvitationInfo) -> Result<(TenantId, Role), ApiError> {
    match invitation.status.as_str() {
        "pending" => {}
        "accepted" => return Err(invitation_error(ClientError::Invalid { status: 409, code: String::new(), message: String::new() })),
        "revoked" => return Err(ApiError::new(StatusCode::GONE, codes::INVITATION_REVOKED, "the invitation was revoked")),
        _ => return Err(invitation_error(ClientError::Invalid { status: 410, code: String::new(), message: String::new() })),
    }
    let tenant = TenantId::parse(&invitation.tenant_id).map_err(ApiError::internal)?;
    let role = invitation
        .role
        .parse::<Role>()
        .ok()
        .filter(|r| *r != Role::Service)
        .ok_or_else(|| ApiError::internal("invitation with an invalid role"))?;
    Ok((tenant, role))
}

/// The email is taken in this tenant (`users_email_lower`).
fn email_taken(e: DbError) -> ApiError {
    match &e {
        DbError::Query(q) if q.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            ApiError::conflict(codes::EMAIL_TAKEN, "a user with this email already exists in this tenant")
        }
        _ => e.into(),
    }
}

/// Registration by invitation: the email and role come from the invitation.
pub async fn register(state: &AppState, req: &RegisterRequest) -> Result<LoginResponse, ApiError> {
    let mut errors = FieldErrors::new();
    errors.check("invitation_token", !req.invitation_token.trim().is_empty() && req.invitation_token.len() <= 256, "required");
    check_password(&mut errors, "password", &req.password);
    let first_name = validate::text(&mut errors, "first_name", &req.first_name, MAX_NAME);
    let last_name = validate::text(&mut errors, "last_name", &req.last_name, MAX_NAME);
    errors.into_result()?;
    let token = req.invitation_token.trim();

    let invitation = state.tenants.invitation(&public_context(), token).await.map_err(invitation_error)?;
    let (tenant, role) = check_invitation(&invitation)?;
    active_tenant(state, &tenant).await?;
    let password_hash = state.hasher.hash(&req.password).await?;

    let tx = state.db.tenant(&tenant).await?;
    let new = NewUser {
        email: &invitation.email.to_lowercase(),
        password_hash: &password_hash,
        first_name: &first_name,
        last_name: &last_name,
        role: role.as_str(),
        status: "active",
        // The invitation went to this address and came back: it is verified.
        email_verified: true,
        created_by: None,
    };
    let user = users::insert_user(&tx, &new).await.map_err(email_taken)?;
    users::insert_audit(&tx, user.id, None, "user", None, Some(&format!("registered by invitation {} as {role}", invitation.id))).await?;
    crm_events::publish(&tx, Some(user.id), USER_CREATED, basic(&user)).await?;
    let ctx = CallContext { bearer: Some(service_token(state, &tenant)?), ..public_context() };
    state.tenants.accept_invitation(&ctx, token, Some(user.id)).await.map_err(invitation_error)?;
    let session = issue_session(state, &tx, &user, None).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, user_id = user.id, role = %role, "user registered");
    Ok(session.response)
}
