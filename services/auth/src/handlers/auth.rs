//! The `/auth/*` endpoints: registration, login, refresh, logout, password reset, me.
//! Thin: parse, resolve the tenant, run the repository inside one tenant transaction,
//! enqueue events in it, answer.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use crm_client_auth::{LoginResponse, MeResponse, UserBasicInfo};
use crm_client_tenant::{CallContext, ClientError, InvitationInfo};
use crm_events::{Envelope, enqueue};
use crm_tenant::{TenantId, TenantTx, throttle};
use crm_web::permissions::permissions_for;
use crm_web::{ApiError, AppJson, ClientIp, Created, FieldErrors, NoContent, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::domain::{MAX_NAME, check_password, hash_token, new_reset_token, reset_token_tenant};
use crm_web::validate;
use crate::extract::{Accepted, SecretJson};
use crate::repo::{self, NewUser, basic};
use crate::tenancy::{Member, TenantHints, active_tenant, resolve_public};
use crate::tokens::{issue_session, service_token};

pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
pub const EMAIL_TAKEN: &str = "EMAIL_TAKEN";
pub const INVALID_RESET_TOKEN: &str = "INVALID_RESET_TOKEN";
pub const REFRESH_TOKEN_REUSED: &str = "REFRESH_TOKEN_REUSED";

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

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AcceptedBody {
    pub message: String,
}

/// Payload of `user.password_reset_requested`: the user, and the token for the email sender.
#[derive(Serialize)]
struct ResetRequested<'a> {
    #[serde(flatten)]
    user: UserBasicInfo,
    reset_token: &'a str,
    expires_at: chrono::DateTime<Utc>,
}

pub(crate) async fn publish(
    tx: &TenantTx<'_>,
    event_type: &str,
    actor: Option<i32>,
    data: impl Serialize,
) -> Result<(), ApiError> {
    let event = Envelope::new(event_type, tx.tenant_id(), actor.map(|a| a.to_string()), data).map_err(ApiError::internal)?;
    enqueue(tx, &event).await?;
    Ok(())
}

fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, INVALID_CREDENTIALS, "invalid email or password")
}

fn call_context() -> CallContext {
    let ctx = CallContext::default();
    match crm_web::request_id::current() {
        Some(id) => ctx.with_request_id(id),
        None => ctx,
    }
}

/// tenant-service's answers about an invitation, as this API tells them.
fn invitation_error(err: ClientError) -> ApiError {
    match err {
        ClientError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "INVITATION_NOT_FOUND", "invitation not found: check the link"),
        ClientError::Invalid { status: 410, .. } => {
            ApiError::new(StatusCode::GONE, "INVITATION_EXPIRED", "the invitation has expired: ask for a new one")
        }
        ClientError::Invalid { status: 409, .. } => {
            ApiError::conflict("INVITATION_NOT_PENDING", "the invitation was already used")
        }
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
        "revoked" => return Err(ApiError::new(StatusCode::GONE, "INVITATION_REVOKED", "the invitation was revoked")),
        _ => return Err(invitation_error(ClientError::Invalid { status: 410, code: String::new(), message: String::new() })),
    }
    let tenant = TenantId::parse(&invitation.tenant_id).map_err(ApiError::internal)?;
    let role = invitation.role.parse::<Role>().ok().filter(|r| *r != Role::Service).ok_or_else(|| ApiError::internal("invitation with an invalid role"))?;
    Ok((tenant, role))
}

/// Registration by invitation: the email and role come from the invitation.
#[utoipa::path(post, path = "/api/v1/auth/register", request_body = RegisterRequest, tag = "auth",
    responses((status = 201, body = LoginResponse), (status = 400), (status = 403), (status = 404), (status = 409), (status = 410)))]
pub async fn register(State(state): State<AppState>, SecretJson(req): SecretJson<RegisterRequest>) -> Result<Created<LoginResponse>, ApiError> {
    let mut errors = FieldErrors::new();
    errors.check("invitation_token", !req.invitation_token.trim().is_empty() && req.invitation_token.len() <= 256, "required");
    check_password(&mut errors, "password", &req.password);
    let first_name = validate::text(&mut errors, "first_name", &req.first_name, MAX_NAME);
    let last_name = validate::text(&mut errors, "last_name", &req.last_name, MAX_NAME);
    errors.into_result()?;
    let token = req.invitation_token.trim();

    let invitation = state.tenants.invitation(&call_context(), token).await.map_err(invitation_error)?;
    let (tenant, role) = check_invitation(&invitation)?;
    active_tenant(&state, &tenant).await?;
    let password_hash = state.hasher.hash(&req.password).await?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&tenant).await?;
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
    let user = repo::insert_user(&tx, &new).await.map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            ApiError::conflict(EMAIL_TAKEN, "a user with this email already exists in this tenant")
        } else {
            e.into()
        }
    })?;
    repo::insert_audit(&tx, user.id, None, "user", None, Some(&format!("registered by invitation {} as {role}", invitation.id))).await?;
    publish(&tx, "user.created", Some(user.id), basic(&user)).await?;
    let ctx = CallContext { bearer: Some(service_token(&state, &tenant)?), ..call_context() };
    state.tenants.accept_invitation(&ctx, token, Some(user.id)).await.map_err(invitation_error)?;
    let session = issue_session(&state, &tx, &user, None).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, user_id = user.id, role = %role, "user registered");
    Ok(Created(session.response))
}

/// Login: 5 failures per IP + email in 15 minutes, then 429 until the window ends.
#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest, tag = "auth",
    responses((status = 200, body = LoginResponse), (status = 400), (status = 401), (status = 403), (status = 404), (status = 429)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    hints: TenantHints,
    SecretJson(req): SecretJson<LoginRequest>,
) -> Result<AppJson<LoginResponse>, ApiError> {
    let mut errors = FieldErrors::new();
    let email = validate::email(&mut errors, "email", &req.email);
    errors.check("password", !req.password.is_empty(), "required");
    errors.check("password", req.password.chars().count() <= crate::domain::MAX_PASSWORD, "must be at most 128 characters");
    errors.into_result()?;
    let tenant = resolve_public(&state, &hints, req.tenant.as_deref()).await?;
    let bucket = format!("login:{}:{ip}:{email}", tenant.id);
    let window = state.config.login_window_secs;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&tenant.id).await?;
    let (failures, retry_after) = throttle::current_hits(&tx, &bucket, window).await?;
    let credentials = if failures >= state.config.login_max_failures { None } else { repo::credentials_by_email(&tx, &email).await? };
    tx.commit().await?;
    drop(conn); // no pooled connection is held while the password hashes
    if failures >= state.config.login_max_failures {
        tracing::warn!(security_event = "login_throttled", tenant_id = %tenant.id, ip, email, failures, "login refused: too many failures");
        return Err(ApiError::too_many_requests(u64::try_from(retry_after).unwrap_or(1)));
    }

    let verified = state.hasher.verify(&req.password, credentials.as_ref().map(|c| c.password_hash.as_str())).await?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&tenant.id).await?;
    let user = match &credentials {
        Some(c) if verified && c.status == "active" => repo::record_login(&tx, c.id, &c.password_hash).await?,
        _ => None,
    };
    let Some(user) = user else {
        let (failures, _) = throttle::count_hit(&tx, &bucket, window).await?;
        tx.commit().await?;
        let reason = match &credentials {
            None => "unknown email",
            Some(_) if !verified => "wrong password",
            Some(_) => "user not active",
        };
        tracing::warn!(security_event = "login_failed", tenant_id = %tenant.id, ip, email, reason, failures, "login failed");
        return Err(invalid_credentials());
    };
    throttle::reset(&tx, &bucket).await?;
    let session = issue_session(&state, &tx, &user, None).await?;
    publish(&tx, "user.login", Some(user.id), basic(&user)).await?;
    tx.commit().await?;
    tracing::Span::current().record("user_id", user.id);
    tracing::info!(security_event = "login_succeeded", tenant_id = %tenant.id, user_id = user.id, ip, "login succeeded");
    Ok(AppJson(session.response))
}

/// A new pair for a refresh token, which is used up (rotation). Presenting a used one again
/// revokes its whole family: whoever holds the newer token must sign in again too.
#[utoipa::path(post, path = "/api/v1/auth/refresh", request_body = RefreshRequest, tag = "auth",
    responses((status = 200, body = LoginResponse), (status = 400), (status = 401), (status = 403)))]
pub async fn refresh(State(state): State<AppState>, SecretJson(req): SecretJson<RefreshRequest>) -> Result<AppJson<LoginResponse>, ApiError> {
    let claims = state.auth.keys.verify_refresh(req.refresh_token.trim())?;
    let user_id: i32 = claims.sub.parse().map_err(|_| ApiError::unauthorized("invalid token subject"))?;
    active_tenant(&state, &claims.tenant_id).await?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&claims.tenant_id).await?;
    let Some(stored) = repo::refresh_for_update(&tx, &hash_token(req.refresh_token.trim())).await? else {
        return Err(ApiError::unauthorized("unknown refresh token"));
    };
    if stored.user_id != user_id || stored.jti != claims.jti {
        return Err(ApiError::unauthorized("invalid refresh token"));
    }
    if stored.revoked_at.is_some() {
        if stored.replaced_by.is_none() {
            return Err(ApiError::unauthorized("refresh token revoked: sign in again"));
        }
        let revoked = repo::revoke_family(&tx, &stored.family_id).await?;
        tx.commit().await?;
        tracing::warn!(security_event = "refresh_token_reuse", tenant_id = %claims.tenant_id, user_id, family = stored.family_id, revoked,
            "a rotated refresh token was presented again: session revoked");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, REFRESH_TOKEN_REUSED, "refresh token already used: the session was revoked, sign in again"));
    }
    let user = repo::user_for_update(&tx, user_id).await?.filter(|u| u.status == "active");
    let Some(user) = user else {
        repo::revoke_family(&tx, &stored.family_id).await?;
        tx.commit().await?;
        return Err(ApiError::unauthorized("user is not active"));
    };
    let session = issue_session(&state, &tx, &user, Some(&stored.family_id)).await?;
    repo::mark_rotated(&tx, &stored.jti, &session.refresh_jti).await?;
    tx.commit().await?;
    Ok(AppJson(session.response))
}

/// Ends the session of a refresh token (its whole family). Idempotent.
#[utoipa::path(post, path = "/api/v1/auth/logout", request_body = RefreshRequest, tag = "auth",
    responses((status = 204), (status = 400), (status = 401), (status = 403)))]
pub async fn logout(State(state): State<AppState>, Member(user): Member, SecretJson(req): SecretJson<RefreshRequest>) -> Result<NoContent, ApiError> {
    let claims = state
        .auth
        .keys
        .verify_refresh(req.refresh_token.trim())
        .map_err(|_| ApiError::validation([("refresh_token", "not a valid refresh token")]))?;
    if claims.tenant_id != user.tenant_id || claims.sub != user.user_id.to_string() {
        return Err(ApiError::forbidden("this refresh token belongs to another user"));
    }
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    if let Some(stored) = repo::refresh_for_update(&tx, &hash_token(req.refresh_token.trim())).await? {
        repo::revoke_family(&tx, &stored.family_id).await?;
    }
    tx.commit().await?;
    Ok(NoContent)
}

fn reset_accepted() -> Accepted<AcceptedBody> {
    Accepted(AcceptedBody { message: "if an account with this email exists, a reset link is on its way".to_owned() })
}

/// Starts a password reset. Always 202 for a well-formed request, whether or not the account
/// exists; the token travels only in the `user.password_reset_requested` event.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", request_body = PasswordResetRequest, tag = "auth",
    responses((status = 202, body = AcceptedBody), (status = 400)))]
pub async fn password_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    hints: TenantHints,
    AppJson(req): AppJson<PasswordResetRequest>,
) -> Result<Accepted<AcceptedBody>, ApiError> {
    let mut errors = FieldErrors::new();
    let email = validate::email(&mut errors, "email", &req.email);
    errors.into_result()?;
    let tenant = match resolve_public(&state, &hints, req.tenant.as_deref()).await {
        Ok(t) => t,
        // An unknown or inactive tenant looks like an unknown account.
        Err(e) if matches!(e.status(), StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) => return Ok(reset_accepted()),
        Err(e) => return Err(e),
    };
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&tenant.id).await?;
    let (requests, _) = throttle::count_hit(&tx, &format!("reset:{}:{email}", tenant.id), 3600).await?;
    if requests > state.config.reset_requests_per_hour {
        tx.commit().await?;
        tracing::warn!(security_event = "password_reset_throttled", tenant_id = %tenant.id, ip, email, "password reset requests throttled");
        return Ok(reset_accepted());
    }
    if let Some(user) = repo::user_by_email(&tx, &email).await?.filter(|u| u.status == "active") {
        let (token, token_hash) = new_reset_token(&tenant.id);
        let expires_at = Utc::now() + chrono::Duration::from_std(state.config.reset_ttl).map_err(ApiError::internal)?;
        repo::insert_reset(&tx, &ulid::Ulid::generate().to_string(), user.id, &token_hash, expires_at).await?;
        let data = ResetRequested { user: basic(&user), reset_token: &token, expires_at };
        publish(&tx, "user.password_reset_requested", None, data).await?;
        tracing::info!(security_event = "password_reset_requested", tenant_id = %tenant.id, user_id = user.id, ip, "password reset requested");
    } else {
        tracing::info!(security_event = "password_reset_unknown_account", tenant_id = %tenant.id, ip, "password reset for no active account");
    }
    tx.commit().await?;
    Ok(reset_accepted())
}

fn invalid_reset_token() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, INVALID_RESET_TOKEN, "the reset link is invalid, used or expired")
}

/// Sets a new password with a reset token: single use, 1 h. Also ends every session of the
/// user (refresh tokens revoked, access tokens refused from now).
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", request_body = PasswordResetConfirm, tag = "auth",
    responses((status = 204), (status = 400)))]
pub async fn password_reset_confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    SecretJson(req): SecretJson<PasswordResetConfirm>,
) -> Result<NoContent, ApiError> {
    let mut errors = FieldErrors::new();
    check_password(&mut errors, "new_password", &req.new_password);
    errors.check("token", !req.token.trim().is_empty(), "required");
    errors.into_result()?;
    let token = req.token.trim();
    let tenant = reset_token_tenant(token).ok_or_else(invalid_reset_token)?;
    let token_hash = hash_token(token);
    if state.registry.by_id(&tenant).await?.is_none_or(|t| !t.is_active()) {
        return Err(invalid_reset_token());
    }
    // Checked before hashing, so garbage tokens cost no bcrypt; used for real below.
    {
        let mut conn = state.db.connect().await?;
        let tx = conn.tenant(&tenant).await?;
        let valid = repo::reset_is_valid(&tx, &token_hash).await?;
        tx.commit().await?;
        if !valid {
            tracing::info!(security_event = "password_reset_invalid_token", tenant_id = %tenant, ip, "invalid password reset token");
            return Err(invalid_reset_token());
        }
    }
    let password_hash = state.hasher.hash(&req.new_password).await?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&tenant).await?;
    let user_id = repo::consume_reset(&tx, &token_hash).await?.ok_or_else(invalid_reset_token)?;
    let user = repo::set_password(&tx, user_id, &password_hash).await?.ok_or_else(invalid_reset_token)?;
    repo::revoke_user_refresh(&tx, user_id).await?;
    repo::record_revocation(&tx, user_id, user.status == "inactive").await?;
    repo::insert_audit(&tx, user_id, None, "password", None, None).await?;
    publish(&tx, "user.password_reset", None, basic(&user)).await?;
    tx.commit().await?;
    tracing::info!(security_event = "password_reset", tenant_id = %tenant, user_id, ip, "password reset");
    Ok(NoContent)
}

/// The caller's profile and permissions.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeResponse), (status = 401), (status = 403), (status = 404)))]
pub async fn me(State(state): State<AppState>, Member(user): Member) -> Result<AppJson<MeResponse>, ApiError> {
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let details = repo::user_by_id(&tx, user.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    tx.commit().await?;
    let role = details.role.parse::<Role>().unwrap_or(user.role);
    Ok(AppJson(MeResponse { permissions: permissions_for(role), user: details }))
}
