//! Authentication: JWTs (HS256, shared `JWT_SECRET`, verified locally by every service), the
//! [`AuthUser`] extractor, token guards (tenant suspended, user changed) and the platform
//! operator token.
//!
//! A service wires it by putting an [`AuthState`] in its state and deriving `FromRef`:
//!
//! ```ignore
//! #[derive(Clone, axum::extract::FromRef)]
//! struct AppState { auth: AuthState, db: TenantDb }
//! async fn handler(user: AuthUser) -> Result<AppJson<..>, ApiError> { .. }
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use crm_tenant::{TenantId, TenantRegistry, TenantStatus};
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{ApiError, codes};

/// The header a client may send to name its tenant; it must match the token's.
pub static X_TENANT_ID: HeaderName = HeaderName::from_static("x-tenant-id");

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;

/// A secret string (JWT secret, platform operator token) that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The variable's value, or `None` when unset or empty.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var).ok().filter(|v| !v.is_empty()).map(Self::new)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `candidate` in constant time (both sides are MACed with a fixed key and
    /// the tags compared with `subtle`), so response timing reveals nothing of the secret,
    /// not even its length.
    pub fn matches(&self, candidate: &str) -> bool {
        fn mac(value: &str) -> Hmac<Sha256> {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"crm-web secret comparison")
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            mac.update(value.as_bytes());
            mac
        }
        let expected = mac(&self.0).finalize().into_bytes();
        mac(candidate).verify_slice(&expected).is_ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A user's role. `service` is for service-to-service calls with no user behind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    SalesRep,
    Viewer,
    Service,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Manager, Role::SalesRep, Role::Viewer, Role::Service];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manager => "manager",
            Self::SalesRep => "sales_rep",
            Self::Viewer => "viewer",
            Self::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown role {:?}", self.0)
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    Access,
    Refresh,
}

/// The claims of our tokens. `typ` keeps a refresh token from being used as an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id as a decimal string (`"0"` for service tokens).
    pub sub: String,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub iss: String,
    /// Unique token id (ULID): refresh token rotation and revocation key on it.
    pub jti: String,
    pub typ: TokenType,
}

impl Claims {
    /// Claims issued now, valid for `ttl`, with a fresh `jti`.
    pub fn new(
        typ: TokenType,
        user_id: i32,
        tenant_id: TenantId,
        email: impl Into<String>,
        role: Role,
        issuer: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        let now = chrono::Utc::now().timestamp();
        Self {
            sub: user_id.to_string(),
            tenant_id,
            email: email.into(),
            role,
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            nbf: None,
            iss: issuer.into(),
            jti: ulid::Ulid::generate().to_string(),
            typ,
        }
    }
}

/// Signs and verifies tokens. HS256 only: the algorithm is never taken from the token.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[&issuer]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false; // no `aud` in our tokens
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer,
            validation,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs `claims` (HS256).
    pub fn issue(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).map_err(ApiError::internal)
    }

    /// Verifies an access token: signature, `alg` HS256, `exp`/`nbf` (5 s leeway), issuer,
    /// and `typ: access`. Every failure is a 401.
    pub fn verify_access(&self, token: &str) -> Result<Claims, ApiError> {
        self.verify(token, TokenType::Access)
    }

    /// Same checks for a refresh token (auth-service's `/auth/refresh`).
    pub fn verify_refresh(&self, token: &str) -> Result<Claims, ApiError> {
        self.verify(token, TokenType::Refresh)
    }

    fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, ApiError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                tracing::info!(security_event = "token_rejected", reason = %e, "token rejected");
                match e.kind() {
                    ErrorKind::ExpiredSignature => ApiError::unauthorized("token expired"),
                    _ => ApiError::unauthorized("invalid token"),
                }
            })?
            .claims;
        if claims.typ != expected {
            tracing::info!(security_event = "token_rejected", reason = "wrong token type", "token rejected");
            return Err(ApiError::unauthorized("invalid token type"));
        }
        Ok(claims)
    }
}

/// An extra check on every authenticated request, after the token verified: tenant still
/// active, user not deactivated or changed since the token was issued, ...
pub trait TokenGuard: Send + Sync {
    fn check<'a>(&'a self, user: &'a AuthUser) -> BoxFuture<'a, Result<(), ApiError>>;
}

/// Accepts every verified token.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGuard;

impl TokenGuard for NoGuard {
    fn check<'a>(&'a self, _user: &'a AuthUser) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Refuses tokens of tenants that no longer exist (401) or are not active (403
/// `TENANT_SUSPENDED` / `TENANT_INACTIVE`). Reads the registry cache, so a suspension is seen
/// within the cache TTL (at once where `tenant.*` events invalidate it).
pub struct TenantStatusGuard {
    registry: Arc<TenantRegistry>,
}

impl TenantStatusGuard {
    pub fn new(registry: Arc<TenantRegistry>) -> Self {
        Self { registry }
    }
}

impl TokenGuard for TenantStatusGuard {
    fn check<'a>(&'a self, user: &'a AuthUser) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let tenant = self.registry.by_id(&user.tenant_id).await?;
            match tenant.map(|t| t.status) {
                None => Err(ApiError::unauthorized("tenant does not exist")),
                Some(TenantStatus::Active) => Ok(()),
                Some(TenantStatus::Suspended) => {
                    Err(ApiError::new(axum::http::StatusCode::FORBIDDEN, codes::TENANT_SUSPENDED, "tenant is suspended"))
                }
                Some(TenantStatus::Pending) => {
                    Err(ApiError::new(axum::http::StatusCode::FORBIDDEN, codes::TENANT_INACTIVE, "tenant is not active yet"))
                }
            }
        })
    }
}

/// Runs guards in order; the first refusal wins.
#[derive(Clone, Default)]
pub struct GuardChain(pub Vec<Arc<dyn TokenGuard>>);

impl TokenGuard for GuardChain {
    fn check<'a>(&'a self, user: &'a AuthUser) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            for guard in &self.0 {
                guard.check(user).await?;
            }
            Ok(())
        })
    }
}

/// What the auth extractors need from a service's state (`AuthState: FromRef<S>`).
#[derive(Clone)]
pub struct AuthState {
    pub keys: Arc<JwtKeys>,
    pub guard: Arc<dyn TokenGuard>,
    /// `PLATFORM_ADMIN_TOKEN`; `None` disables platform operator access.
    pub platform_token: Option<Secret>,
    /// Tenant addresses (`<subdomain>.<BASE_DOMAIN>` in `Host`): a token used on another
    /// tenant's address is refused with 403 `TENANT_MISMATCH`, in every service.
    pub hosts: Option<TenantHosts>,
    /// Take the client address from `X-Forwarded-For` (`TRUST_FORWARDED_FOR`; only behind
    /// an ingress that sets it), see [`crate::ClientIp`].
    pub trust_forwarded_for: bool,
}

/// The base domain tenants live under and the registry that maps subdomains to tenants.
#[derive(Clone)]
pub struct TenantHosts {
    pub base_domain: String,
    pub registry: Arc<TenantRegistry>,
}

impl TenantHosts {
    /// 403 `TENANT_MISMATCH` when `Host` is a tenant address (`acme.<base>`) of a tenant other
    /// than `token_tenant` (or of no tenant at all); `Ok` for any other host (an IP, the bare
    /// base domain, another domain). 503 when the registry cannot be read.
    pub async fn check(&self, parts: &Parts, token_tenant: &TenantId) -> Result<(), ApiError> {
        let host = parts.headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| parts.uri.host());
        let Some(subdomain) = host.and_then(|h| crm_tenant::resolve::subdomain_from_host(h, &self.base_domain)) else {
            return Ok(());
        };
        match self.registry.by_subdomain(&subdomain).await? {
            Some(record) if record.id == *token_tenant => Ok(()),
            _ => {
                tracing::info!(security_event = "tenant_mismatch", %subdomain, "token used on another tenant's address");
                Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    codes::TENANT_MISMATCH,
                    "this address belongs to another tenant than the token",
                ))
            }
        }
    }
}

impl AuthState {
    /// No guard and no platform operator; add them with the `with_` methods.
    pub fn new(keys: JwtKeys) -> Self {
        Self { keys: Arc::new(keys), guard: Arc::new(NoGuard), platform_token: None, hosts: None, trust_forwarded_for: false }
    }

    pub fn with_trust_forwarded_for(mut self, trust: bool) -> Self {
        self.trust_forwarded_for = trust;
        self
    }

    pub fn with_hosts(mut self, hosts: TenantHosts) -> Self {
        self.hosts = Some(hosts);
        self
    }

    pub fn with_guard(mut self, guard: Arc<dyn TokenGuard>) -> Self {
        self.guard = guard;
        self
    }

    pub fn with_platform_token(mut self, token: Option<Secret>) -> Self {
        self.platform_token = token;
        self
    }
}

/// The authenticated caller. Extracting it fails closed: missing or bad token 401,
/// `X-Tenant-ID` of another tenant 403, then the [`TokenGuard`]s.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: i32,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    pub claims: Claims,
}

impl AuthUser {
    /// Checks what the token says beyond the signature (`sub` must be a user id).
    pub fn from_claims(claims: Claims) -> Result<Self, ApiError> {
        let user_id = claims.sub.parse().map_err(|_| ApiError::unauthorized("invalid token subject"))?;
        Ok(Self { user_id, tenant_id: claims.tenant_id, email: claims.email.clone(), role: claims.role, claims })
    }

    async fn authenticate(parts: &Parts, auth: &AuthState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?.ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let user = Self::from_claims(auth.keys.verify_access(token)?)?;
        // Recorded before the remaining checks so refusals are logged with who was refused.
        let span = tracing::Span::current();
        span.record("tenant_id", tracing::field::display(&user.tenant_id));
        span.record("user_id", user.user_id);

        let header = parts.headers.get(&X_TENANT_ID).map(|v| v.to_str().unwrap_or("\u{fffd}"));
        crm_tenant::resolve::check_tenant_header(header, &user.tenant_id).map_err(|e| {
            tracing::info!(security_event = "tenant_mismatch", "X-Tenant-ID does not match the token");
            ApiError::new(axum::http::StatusCode::FORBIDDEN, codes::TENANT_MISMATCH, e.to_string())
        })?;
        if let Some(hosts) = &auth.hosts {
            hosts.check(parts, &user.tenant_id).await?;
        }
        auth.guard.check(&user).await?;
        Ok(user)
    }
}

/// The bearer token of the request: `Ok(None)` without an `Authorization` header, 401 when
/// the header is not `Bearer <token>`.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else { return Ok(None) };
    let malformed = || ApiError::unauthorized("malformed Authorization header, expected: Bearer <token>");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

impl<S> FromRequestParts<S> for AuthUser
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Several extractors of one request (e.g. a permission wrapper and the handler)
        // verify once.
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let user = Self::authenticate(parts, &AuthState::from_ref(state)).await?;
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// `Option<AuthUser>`: `None` without an `Authorization` header; a header that is there but
/// invalid is still a 401.
impl<S> OptionalFromRequestParts<S> for AuthUser
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if parts.headers.contains_key(AUTHORIZATION) {
            <Self as FromRequestParts<S>>::from_request_parts(parts, state).await.map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The platform operator: bearer token equal to `PLATFORM_ADMIN_TOKEN` (tenant-service's
/// status changes and deletions). 401 otherwise, or when no operator token is configured.
#[derive(Debug, Clone, Copy)]
pub struct PlatformOperator;

impl PlatformOperator {
    fn matches(parts: &Parts, auth: &AuthState) -> bool {
        let token = bearer_token(&parts.headers).ok().flatten();
        match (token, &auth.platform_token) {
            (Some(token), Some(secret)) => secret.matches(token),
            _ => false,
        }
    }
}

impl<S> FromRequestParts<S> for PlatformOperator
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if Self::matches(parts, &AuthState::from_ref(state)) {
            Ok(Self)
        } else {
            tracing::info!(security_event = "operator_auth_failed", "platform operator authentication failed");
            Err(ApiError::unauthorized("platform operator token required"))
        }
    }
}

/// `Option<PlatformOperator>`: `Some` when the bearer is the operator token, `None` otherwise
/// (no header, or a user's token): for endpoints that are public but lift limits for the
/// operator, such as tenant signup.
impl<S> OptionalFromRequestParts<S> for PlatformOperator
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::matches(parts, &AuthState::from_ref(state)).then_some(Self))
    }
}

/// Either the platform operator or an authenticated user, for endpoints open to both
/// (e.g. `PATCH /tenants/{id}`: admins rename, the operator changes the status).
#[derive(Debug, Clone)]
pub enum Principal {
    Operator,
    User(Box<AuthUser>),
}

impl<S> FromRequestParts<S> for Principal
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if PlatformOperator::matches(parts, &AuthState::from_ref(state)) {
            return Ok(Self::Operator);
        }
        <AuthUser as FromRequestParts<S>>::from_request_parts(parts, state).await.map(|u| Self::User(Box::new(u)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_and_compare() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter"));
        assert!(!s.matches(""));
    }

    #[test]
    fn roles_parse_and_serialize_snake_case() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert!(bearer_token(&h).unwrap().is_none());
        h.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h).unwrap(), Some("abc"));
        h.insert(AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h).unwrap(), Some("abc"));
        for bad in ["Basic abc", "Bearer", "Bearer ", "abc"] {
            h.insert(AUTHORIZATION, bad.parse().unwrap());
            assert!(bearer_token(&h).is_err(), "{bad}");
        }
    }

    #[test]
    fn issue_and_verify() {
        let keys = JwtKeys::new(b"secret", "crm-auth");
        let tenant = TenantId::new();
        let claims = Claims::new(TokenType::Access, 7, tenant, "a@b.c", Role::SalesRep, "crm-auth", Duration::from_secs(60));
        let token = keys.issue(&claims).unwrap();
        assert_eq!(keys.verify_access(&token).unwrap(), claims);
        assert_eq!(keys.verify_refresh(&token).unwrap_err().status(), axum::http::StatusCode::UNAUTHORIZED);
        let user = AuthUser::from_claims(claims).unwrap();
        assert_eq!((user.user_id, user.tenant_id, user.role), (7, tenant, Role::SalesRep));
    }
}
