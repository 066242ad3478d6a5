//! The `/auth/*` endpoints: registration, login, refresh, logout, password reset, me.
//! Registration, login, refresh and the password reset are public; logout and me need a
//! token.

use axum::extract::State;
use crm_client_auth::{LoginResponse, MeResponse};
use crm_web::{ApiError, AppJson, Caller, Created, NoContent};

use crate::AppState;
use crate::extract::Accepted;
use crm_web::ClientIp;
use crate::input::{AcceptedBody, LoginRequest, PasswordResetConfirm, PasswordResetRequest, RefreshRequest, RegisterRequest};
use crate::service::{password_reset, registration, sessions, users};
use crate::tenancy::TenantHints;

/// Registration by invitation: the email and role come from the invitation.
#[utoipa::path(post, path = "/api/v1/auth/register", request_body = RegisterRequest, tag = "auth",
    responses((status = 201, body = LoginResponse), (status = 400), (status = 403), (status = 404), (status = 409), (status = 410), (status = 503)))]
pub async fn register(State(state): State<AppState>, AppJson(req): AppJson<RegisterRequest>) -> Result<Created<LoginResponse>, ApiError> {
    Ok(Created(registration::register(&state, &req).await?))
}

/// Login: `LOGIN_MAX_FAILURES` failures (default 5) per IP + email in `LOGIN_WINDOW_SECS`
/// (default 15 minutes), then 429 until the window ends.
#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest, tag = "auth",
    responses((status = 200, body = LoginResponse), (status = 400), (status = 401), (status = 403), (status = 404), (status = 429), (status = 503)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    hints: TenantHints,
    AppJson(req): AppJson<LoginRequest>,
) -> Result<AppJson<LoginResponse>, ApiError> {
    Ok(AppJson(sessions::login(&state, &ip, &hints, &req).await?))
}

/// A new pair for a refresh token, which is used up (rotation). Presenting a used one again
/// revokes its whole family: whoever holds the newer token must sign in again too.
#[utoipa::path(post, path = "/api/v1/auth/refresh", request_body = RefreshRequest, tag = "auth",
    responses((status = 200, body = LoginResponse), (status = 400), (status = 401), (status = 403)))]
pub async fn refresh(State(state): State<AppState>, AppJson(req): AppJson<RefreshRequest>) -> Result<AppJson<LoginResponse>, ApiError> {
    Ok(AppJson(sessions::refresh(&state, &req).await?))
}

/// Ends the session of a refresh token (its whole family). Idempotent.
#[utoipa::path(post, path = "/api/v1/auth/logout", request_body = RefreshRequest, tag = "auth",
    responses((status = 204), (status = 400), (status = 401), (status = 403)))]
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<RefreshRequest>,
) -> Result<NoContent, ApiError> {
    sessions::logout(&state, &caller, &req).await?;
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
    password_reset::request_reset(&state, &ip, &hints, &req).await?;
    Ok(reset_accepted())
}

/// Sets a new password with a reset token: single use, 1 h by default. Also ends every
/// session of the user (refresh tokens revoked, access tokens refused from now).
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", request_body = PasswordResetConfirm, tag = "auth",
    responses((status = 204), (status = 400)))]
pub async fn password_reset_confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(req): AppJson<PasswordResetConfirm>,
) -> Result<NoContent, ApiError> {
    password_reset::confirm_reset(&state, &ip, &req).await?;
    Ok(NoContent)
}

/// The caller's profile and permissions.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeResponse), (status = 401), (status = 403), (status = 404)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<AppJson<MeResponse>, ApiError> {
    Ok(AppJson(users::me(&state, &caller).await?))
}
