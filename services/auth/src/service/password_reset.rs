//! Password reset: a request (always 202, the token travels only in the
//! `user.password_reset_requested` event) and its confirmation (single use, ends every
//! session of the user).

use axum::http::StatusCode;
use chrono::Utc;
use crm_client_auth::UserBasicInfo;
use crm_client_auth::subjects::{USER_PASSWORD_RESET, USER_PASSWORD_RESET_REQUESTED};
use crm_web::{ApiError, FieldErrors, codes, validate};
use serde::Serialize;

use crate::AppState;
use crate::domain::{basic, check_password, hash_token, new_reset_token, reset_token_tenant};
use crate::input::{PasswordResetConfirm, PasswordResetRequest};
use crate::repo::{resets, sessions, users};
use crm_tenant::throttle;
use crate::tenancy::{TenantHints, resolve_public};

/// Payload of `user.password_reset_requested`: the user, and the token for the email sender.
#[derive(Serialize)]
struct ResetRequested<'a> {
    #[serde(flatten)]
    user: UserBasicInfo,
    reset_token: &'a str,
    expires_at: chrono::DateTime<Utc>,
}

/// Starts a password reset. `Ok` for every well-formed request, whether or not the account
/// exists (an unknown or inactive tenant looks like an unknown account); requests past
/// `reset_requests_per_hour` per tenant + email are silently dropped.
pub async fn request_reset(state: &AppState, ip: &str, hints: &TenantHints, req: &PasswordResetRequest) -> Result<(), ApiError> {
    let mut errors = FieldErrors::new();
    let email = validate::email(&mut errors, "email", &req.email);
    errors.into_result()?;
    let tenant = match resolve_public(state, hints, req.tenant.as_deref()).await {
        Ok(t) => t,
        Err(e) if matches!(e.status(), StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) => return Ok(()),
        Err(e) => return Err(e),
    };
    let tx = state.db.tenant(&tenant.id).await?;
    let (requests, _) = throttle::count_hit(&tx, &format!("reset:{}:{email}", tenant.id), 3600).await?;
    if requests > state.settings.reset_requests_per_hour {
        tx.commit().await?;
        tracing::warn!(security_event = "password_reset_throttled", tenant_id = %tenant.id, ip, email, "password reset requests throttled");
        return Ok(());
    }
    if let Some(user) = users::user_by_email(&tx, &email).await?.filter(|u| u.status == "active") {
        let (token, token_hash) = new_reset_token(&tenant.id);
        let expires_at = Utc::now() + chrono::Duration::from_std(state.settings.reset_ttl).map_err(ApiError::internal)?;
        resets::insert_reset(&tx, &ulid::Ulid::generate().to_string(), user.id, &token_hash, expires_at).await?;
        let data = ResetRequested { user: basic(&user), reset_token: &token, expires_at };
        crm_events::publish(&tx, None, USER_PASSWORD_RESET_REQUESTED, data).await?;
        tracing::info!(security_event = "password_reset_requested", tenant_id = %tenant.id, user_id = user.id, ip, "password reset requested");
    } else {
        tracing::info!(security_event = "password_reset_unknown_account", tenant_id = %tenant.id, ip, "password reset for no active account");
    }
    tx.commit().await?;
    Ok(())
}

fn invalid_reset_token() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_RESET_TOKEN, "the reset link is invalid, used or expired")
}

/// Sets a new password with a reset token: single use, `reset_ttl`. Also ends every session
/// of the user (refresh tokens revoked, access tokens refused from now).
pub async fn confirm_reset(state: &AppState, ip: &str, req: &PasswordResetConfirm) -> Result<(), ApiError> {
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
        let tx = state.db.tenant(&tenant).await?;
        let valid = resets::reset_is_valid(&tx, &token_hash).await?;
        tx.commit().await?;
        if !valid {
            tracing::info!(security_event = "password_reset_invalid_token", tenant_id = %tenant, ip, "invalid password reset token");
            return Err(invalid_reset_token());
        }
    }
    let password_hash = state.hasher.hash(&req.new_password).await?;
    let tx = state.db.tenant(&tenant).await?;
    let user_id = resets::consume_reset(&tx, &token_hash).await?.ok_or_else(invalid_reset_token)?;
    let user = users::set_password(&tx, user_id, &password_hash).await?.ok_or_else(invalid_reset_token)?;
    sessions::revoke_user_refresh(&tx, user_id).await?;
    users::record_revocation(&tx, user_id, user.status == "inactive").await?;
    users::insert_audit(&tx, user_id, None, "password", None, None).await?;
    crm_events::publish(&tx, None, USER_PASSWORD_RESET, basic(&user)).await?;
    tx.commit().await?;
    tracing::info!(security_event = "password_reset", tenant_id = %tenant, user_id, ip, "password reset");
    Ok(())
}
