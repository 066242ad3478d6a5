//! Sessions: login (with throttling), refresh token rotation, logout, and issuing tokens (an
//! access + refresh pair per session, the refresh token stored hashed in its rotation family;
//! the short-lived service token for calls with no user behind them).

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use crm_client_auth::subjects::{USER_LOGGED_OUT, USER_LOGIN};
use crm_client_auth::{JWTToken, LoginResponse, UserDetails};
use crm_tenant::{TenantId, TenantTx};
use crm_web::{ApiError, Caller, Claims, FieldErrors, Role, TokenType, codes, validate};

use crate::AppState;
use crate::domain::{MAX_PASSWORD, basic, hash_token};
use crate::input::{LoginRequest, RefreshRequest};
use crate::repo::sessions::{self as refresh_tokens, NewRefreshToken};
use crate::repo::users;
use crm_tenant::throttle;
use crate::tenancy::{TenantHints, active_tenant, resolve_public};

pub struct Session {
    pub response: LoginResponse,
    pub refresh_jti: String,
}

fn at(unix: i64) -> Result<DateTime<Utc>, ApiError> {
    DateTime::from_timestamp(unix, 0).ok_or_else(|| ApiError::internal("token expiry out of range"))
}

/// Signs a new pair for `user` and stores the refresh token in `family` (a new family, named
/// after the refresh token's jti, when `None`). Call it inside the transaction that read the
/// user with a row lock, so the role in the token is the current one.
pub(crate) async fn issue_session(
    state: &AppState,
    tx: &TenantTx,
    user: &UserDetails,
    family: Option<&str>,
) -> Result<Session, ApiError> {
    let role: Role = user.role.parse().map_err(ApiError::internal)?;
    let keys = &state.auth.keys;
    let tenant = *tx.tenant_id();
    let access = Claims::new(TokenType::Access, user.id, tenant, &user.email, role, keys.issuer(), state.settings.access_ttl);
    let refresh = Claims::new(TokenType::Refresh, user.id, tenant, &user.email, role, keys.issuer(), state.settings.refresh_ttl);
    let access_token = keys.issue(&access)?;
    let refresh_token = keys.issue(&refresh)?;
    refresh_tokens::insert_refresh(
        tx,
        &NewRefreshToken {
            jti: &refresh.jti,
            token_hash: &hash_token(&refresh_token),
            user_id: user.id,
            family_id: family.unwrap_or(&refresh.jti),
            expires_at: at(refresh.exp)?,
        },
    )
    .await?;
    Ok(Session {
        response: LoginResponse {
            token: JWTToken { access_token, refresh_token, expires_at: at(access.exp)?, token_type: "Bearer".to_owned() },
            expires_in: access.exp - access.iat,
            user: user.clone(),
        },
        refresh_jti: refresh.jti,
    })
}

/// A token with role `service` for `tenant` (sub `"0"`), valid `service_token_ttl`.
pub(crate) fn service_token(state: &AppState, tenant: &TenantId) -> Result<String, ApiError> {
    let keys = &state.auth.keys;
    let claims =
        Claims::new(TokenType::Access, 0, *tenant, crate::SERVICE, Role::Service, keys.issuer(), state.settings.service_token_ttl);
    keys.issue(&claims)
}

fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, codes::INVALID_CREDENTIALS, "invalid email or password")
}

/// Login: `login_max_failures` failures per IP + email in `login_window_secs`, then 429
/// until the window ends. No pooled connection is held while the password hashes.
pub async fn login(state: &AppState, ip: &str, hints: &TenantHints, req: &LoginRequest) -> Result<LoginResponse, ApiError> {
    let mut errors = FieldErrors::new();
    let email = validate::email(&mut errors, "email", &req.email);
    errors.check("password", !req.password.is_empty(), "required");
    errors.check("password", req.password.chars().count() <= MAX_PASSWORD, "must be at most 128 characters");
    errors.into_result()?;
    let tenant = resolve_public(state, hints, req.tenant.as_deref()).await?;
    let bucket = format!("login:{}:{ip}:{email}", tenant.id);
    let window = state.settings.login_window_secs;
    let max_failures = state.settings.login_max_failures;

    let tx = state.db.tenant(&tenant.id).await?;
    let (failures, retry_after) = throttle::current_hits(&tx, &bucket, window).await?;
    let credentials = if failures >= max_failures { None } else { users::credentials_by_email(&tx, &email).await? };
    tx.commit().await?;
    if failures >= max_failures {
        tracing::warn!(security_event = "login_throttled", tenant_id = %tenant.id, ip, email, failures, "login refused: too many failures");
        return Err(ApiError::too_many_requests(u64::try_from(retry_after).unwrap_or(1)));
    }

    let verified = state.hasher.verify(&req.password, credentials.as_ref().map(|c| c.password_hash.as_str())).await?;
    let tx = state.db.tenant(&tenant.id).await?;
    let user = match &credentials {
        Some(c) if verified && c.status == "active" => users::record_login(&tx, c.id, &c.password_hash).await?,
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
    let session = issue_session(state, &tx, &user, None).await?;
    crm_events::publish(&tx, Some(user.id), USER_LOGIN, basic(&user)).await?;
    tx.commit().await?;
    tracing::Span::current().record("user_id", user.id);
    tracing::info!(security_event = "login_succeeded", tenant_id = %tenant.id, user_id = user.id, ip, "login succeeded");
    Ok(session.response)
}

/// A new pair for a refresh token, which is used up (rotation). Presenting a used one again
/// revokes its whole family: whoever holds the newer token must sign in again too.
pub async fn refresh(state: &AppState, req: &RefreshRequest) -> Result<LoginResponse, ApiError> {
    let claims = state.auth.keys.verify_refresh(req.refresh_token.trim())?;
    let user_id: i32 = claims.sub.parse().map_err(|_| ApiError::unauthorized("invalid token subject"))?;
    active_tenant(state, &claims.tenant_id).await?;
    let tx = state.db.tenant(&claims.tenant_id).await?;
    let Some(stored) = refresh_tokens::refresh_for_update(&tx, &hash_token(req.refresh_token.trim())).await? else {
        return Err(ApiError::unauthorized("unknown refresh token"));
    };
    if stored.user_id != user_id || stored.jti != claims.jti {
        return Err(ApiError::unauthorized("invalid refresh token"));
    }
    if stored.revoked_at.is_some() {
        if stored.replaced_by.is_none() {
            return Err(ApiError::unauthorized("refresh token revoked: sign in again"));
        }
        let revoked = refresh_tokens::revoke_family(&tx, &stored.family_id).await?;
        tx.commit().await?;
        tracing::warn!(security_event = "refresh_token_reuse", tenant_id = %claims.tenant_id, user_id, family = stored.family_id, revoked,
            "a rotated refresh token was presented again: session revoked");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::REFRESH_TOKEN_REUSED,
            "refresh token already used: the session was revoked, sign in again",
        ));
    }
    let user = users::user_for_update(&tx, user_id).await?.filter(|u| u.status == "active");
    let Some(user) = user else {
        refresh_tokens::revoke_family(&tx, &stored.family_id).await?;
        tx.commit().await?;
        return Err(ApiError::unauthorized("user is not active"));
    };
    let session = issue_session(state, &tx, &user, Some(&stored.family_id)).await?;
    refresh_tokens::mark_rotated(&tx, &stored.jti, &session.refresh_jti).await?;
    tx.commit().await?;
    Ok(session.response)
}

/// Ends the session of a refresh token of the caller (its whole family) and revokes the
/// access token the request was made with: from the next poll of any service's revocation
/// guard (woken by `user.logged_out`), that token gets 401 `TOKEN_REVOKED`. Idempotent.
pub async fn logout(state: &AppState, caller: &Caller, req: &RefreshRequest) -> Result<(), ApiError> {
    let claims = state
        .auth
        .keys
        .verify_refresh(req.refresh_token.trim())
        .map_err(|_| ApiError::validation([("refresh_token", "not a valid refresh token")]))?;
    if claims.tenant_id != caller.tenant_id || claims.sub != caller.user_id.to_string() {
        return Err(ApiError::forbidden("this refresh token belongs to another user"));
    }
    let tx = state.db.tenant(&caller.tenant_id).await?;
    if let Some(stored) = refresh_tokens::refresh_for_update(&tx, &hash_token(req.refresh_token.trim())).await? {
        refresh_tokens::revoke_family(&tx, &stored.family_id).await?;
    }
    let access = &caller.claims;
    if caller.role != Role::Service {
        refresh_tokens::revoke_token(&tx, &access.jti, caller.user_id, at(access.exp)?).await?;
        refresh_tokens::purge_expired_tokens(&tx).await?;
        if let Some(user) = users::user_by_id(&tx, caller.user_id).await? {
            crm_events::publish(&tx, Some(user.id), USER_LOGGED_OUT, basic(&user)).await?;
        }
    }
    tx.commit().await?;
    tracing::info!(security_event = "logout", tenant_id = %caller.tenant_id, user_id = caller.user_id, "signed out: session and access token revoked");
    Ok(())
}
