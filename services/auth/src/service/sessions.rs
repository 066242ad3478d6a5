//! Issuing tokens: an access + refresh pair per session (the refresh token stored hashed, in
//! its rotation family) and the short-lived service token for calls with no user behind them.

use chrono::{DateTime, Utc};
use crm_client_auth::{JWTToken, LoginResponse, UserDetails};
use crm_tenant::{TenantId, TenantTx};
use crm_web::{ApiError, Claims, Role, TokenType};

use crate::AppState;
use crate::domain::hash_token;
use crate::repo::{self, NewRefreshToken};

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
pub async fn issue_session(
    state: &AppState,
    tx: &TenantTx<'_>,
    user: &UserDetails,
    family: Option<&str>,
) -> Result<Session, ApiError> {
    let role: Role = user.role.parse().map_err(ApiError::internal)?;
    let keys = &state.auth.keys;
    let tenant = *tx.tenant_id();
    let access = Claims::new(TokenType::Access, user.id, tenant, &user.email, role, keys.issuer(), state.config.access_ttl);
    let refresh = Claims::new(TokenType::Refresh, user.id, tenant, &user.email, role, keys.issuer(), state.config.refresh_ttl);
    let access_token = keys.issue(&access)?;
    let refresh_token = keys.issue(&refresh)?;
    repo::insert_refresh(
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
pub fn service_token(state: &AppState, tenant: &TenantId) -> Result<String, ApiError> {
    let keys = &state.auth.keys;
    let claims =
        Claims::new(TokenType::Access, 0, *tenant, crate::SERVICE, Role::Service, keys.issuer(), state.config.service_token_ttl);
    keys.issue(&claims)
}
