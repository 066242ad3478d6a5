//! Immediate effect of role changes and deactivations (requirement 2.4), without a call to
//! auth-service per request.
//!
//! auth-service writes `platform.token_revocations (tenant_id, user_id, valid_after,
//! deactivated, changed_at)` in the same transaction as the change. Every service keeps
//! those rows in memory in a [`RevocationGuard`] (a [`TokenGuard`]) and refuses, with 401
//! `TOKEN_REVOKED`, an access token whose user is deactivated or which was issued before
//! `valid_after`. The issue time is read at millisecond precision from the token's `jti`
//! (a ULID); `iat` has whole seconds only.
//!
//! Single tokens are revoked too: logout writes the access token's `jti` into
//! `platform.revoked_tokens (jti, tenant_id, user_id, expires_at, revoked_at)` in its
//! transaction; the guard keeps the live ones (not yet expired) and refuses that token with
//! 401 `TOKEN_REVOKED`. An entry is dropped when its token expires.
//!
//! The map is kept current two ways:
//! * a poller reads the rows changed since the last poll every `poll_interval` (500 ms):
//!   the safe fallback that bounds staleness even when events lag or NATS is down;
//! * [`RevocationGuard::wake`], called by the runtime when a `user.updated` /
//!   `user.deactivated` / `user.password_reset` / `user.logged_out` event arrives, makes the
//!   poller read at once.
//!
//! When the map could not be refreshed for `max_staleness` (database unreachable), the guard
//! fails closed with 503: a revoked token must not pass because the cache is old.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use crm_tenant::{DbError, TenantDb, TenantId};
use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::auth::{AuthUser, Claims, Role, TokenGuard};
use crate::error::{ApiError, codes};

/// The revocation state of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// Tokens issued before this instant (Unix milliseconds) are refused.
    pub valid_after_ms: i64,
    pub deactivated: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct RevocationConfig {
    pub poll_interval: Duration,
    /// Rows are re-read this far behind the newest `changed_at` seen, so a change whose
    /// transaction committed late (its `changed_at` is taken before the commit) is not missed.
    pub overlap: Duration,
    /// Rows whose `valid_after` is older than this no longer matter: every token issued
    /// before them has expired. Must exceed the access token lifetime (24 h by default).
    pub horizon: Duration,
    /// With no successful refresh for this long, authenticated requests get 503.
    pub max_staleness: Duration,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            overlap: Duration::from_secs(10),
            horizon: Duration::from_secs(8 * 24 * 3600),
            max_staleness: Duration::from_secs(5),
        }
    }
}

#[derive(Default)]
struct SyncState {
    /// Newest `changed_at` seen.
    newest: Option<DateTime<Utc>>,
    /// Newest `revoked_at` of a single revoked token seen.
    newest_token: Option<DateTime<Utc>>,
    last_ok: Option<Instant>,
}

/// In-process revocation map; see the module documentation.
pub struct RevocationGuard {
    config: RevocationConfig,
    entries: RwLock<HashMap<(TenantId, i32), Revocation>>,
    /// Single revoked tokens: `jti` -> the token's `exp` (Unix seconds).
    tokens: RwLock<HashMap<String, i64>>,
    sync: Mutex<SyncState>,
    wake: Notify,
}

impl std::fmt::Debug for RevocationGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationGuard").field("entries", &self.len()).finish_non_exhaustive()
    }
}

const SELECT_CHANGED: &str = "SELECT tenant_id, user_id, valid_after, deactivated, changed_at
     FROM platform.token_revocations
     WHERE ($1::timestamptz IS NULL OR changed_at > $1) AND valid_after > $2";

const SELECT_REVOKED_TOKENS: &str = "SELECT jti, expires_at, revoked_at
     FROM platform.revoked_tokens
     WHERE ($1::timestamptz IS NULL OR revoked_at > $1) AND expires_at > now()";

impl RevocationGuard {
    pub fn new(config: RevocationConfig) -> Self {
        Self {
            config,
            entries: RwLock::new(HashMap::new()),
            tokens: RwLock::new(HashMap::new()),
            sync: Mutex::new(SyncState::default()), wake: Notify::new() }
    }

    pub fn config(&self) -> &RevocationConfig {
        &self.config
    }

    /// Number of users with a revocation entry.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, tenant: &TenantId, user_id: i32) -> Option<Revocation> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).get(&(*tenant, user_id)).copied()
    }

    /// Records a user's state (the row is authoritative: it replaces what was there).
    pub fn apply(&self, tenant: TenantId, user_id: i32, revocation: Revocation) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).insert((tenant, user_id), revocation);
    }

    /// Records a single revoked token (`jti`) valid until `exp` (Unix seconds).
    pub fn revoke_token(&self, jti: &str, exp: i64) {
        self.tokens.write().unwrap_or_else(|e| e.into_inner()).insert(jti.to_owned(), exp);
    }

    /// Whether the token with this `jti` was revoked on its own (logout).
    pub fn is_token_revoked(&self, jti: &str) -> bool {
        self.tokens.read().unwrap_or_else(|e| e.into_inner()).contains_key(jti)
    }

    /// Number of single revoked tokens still live.
    pub fn revoked_tokens(&self) -> usize {
        self.tokens.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Makes the poller read the table now (an event said something changed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Reads the rows changed since the last read into the map. Returns how many were read.
    pub async fn sync(&self, db: &TenantDb) -> Result<usize, DbError> {
        let overlap = chrono::Duration::from_std(self.config.overlap).unwrap_or_default();
        let (since, since_token) = {
            let state = self.sync.lock().unwrap_or_else(|e| e.into_inner());
            (state.newest.map(|t| t - overlap), state.newest_token.map(|t| t - overlap))
        };
        let horizon = Utc::now() - chrono::Duration::from_std(self.config.horizon).unwrap_or_default();
        let tx = db.platform().await?;
        let stmt = tx.prepare_cached(SELECT_CHANGED).await?;
        let rows = tx.query(&stmt, &[&since, &horizon]).await?;
        let stmt = tx.prepare_cached(SELECT_REVOKED_TOKENS).await?;
        let token_rows = tx.query(&stmt, &[&since_token]).await?;
        tx.commit().await?;

        let mut newest_token = since_token;
        {
            let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
            for row in &token_rows {
                let expires_at: DateTime<Utc> = row.get(1);
                let revoked_at: DateTime<Utc> = row.get(2);
                tokens.insert(row.get(0), expires_at.timestamp());
                newest_token = newest_token.max(Some(revoked_at));
            }
            let now = Utc::now().timestamp();
            tokens.retain(|_, exp| *exp >= now);
        }

        let mut newest = since;
        {
            let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
            for row in &rows {
                let tenant: String = row.get(0);
                let Ok(tenant) = TenantId::parse(&tenant) else { continue };
                let valid_after: DateTime<Utc> = row.get(2);
                let changed_at: DateTime<Utc> = row.get(4);
                entries.insert(
                    (tenant, row.get(1)),
                    Revocation { valid_after_ms: valid_after.timestamp_millis(), deactivated: row.get(3) },
                );
                newest = newest.max(Some(changed_at));
            }
            let cutoff = horizon.timestamp_millis();
            entries.retain(|_, r| r.valid_after_ms > cutoff);
        }
        let mut state = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        state.newest = state.newest.max(newest);
        state.newest_token = state.newest_token.max(newest_token);
        state.last_ok = Some(Instant::now());
        Ok(rows.len() + token_rows.len())
    }

    /// Polls every `poll_interval`, or at once after [`Self::wake`], until aborted.
    pub fn spawn(self: &Arc<Self>, db: TenantDb) -> tokio::task::JoinHandle<()> {
        let guard = Arc::clone(self);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(guard.config.poll_interval) => {}
                    () = guard.wake.notified() => {}
                }
                match guard.sync(&db).await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("token revocation state refreshed again");
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "token revocation state cannot be refreshed");
                    }
                    Err(_) => {}
                }
            }
        })
    }

    fn is_stale(&self) -> bool {
        let state = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        state.last_ok.is_none_or(|t| t.elapsed() > self.config.max_staleness)
    }

    /// The verdict for one verified token.
    pub fn check_claims(&self, tenant: &TenantId, user_id: i32, claims: &Claims) -> Result<(), ApiError> {
        if claims.role == Role::Service {
            return Ok(()); // no user behind it; short-lived
        }
        if self.is_stale() {
            return Err(ApiError::unavailable("token revocation state unavailable, retry later"));
        }
        if self.is_token_revoked(&claims.jti) {
            tracing::info!(security_event = "token_revoked", reason = "signed out", "token refused");
            return Err(revoked("token revoked: signed out, sign in again"));
        }
        let Some(entry) = self.get(tenant, user_id) else { return Ok(()) };
        if entry.deactivated {
            tracing::info!(security_event = "token_revoked", reason = "user deactivated", "token refused");
            return Err(revoked("user is deactivated"));
        }
        if issued_at_ms(claims) < entry.valid_after_ms {
            tracing::info!(security_event = "token_revoked", reason = "issued before a role or status change", "token refused");
            return Err(revoked("token revoked: the account changed since it was issued, sign in again"));
        }
        Ok(())
    }
}

fn revoked(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, codes::TOKEN_REVOKED, message)
}

/// When the token was issued, in Unix milliseconds: the timestamp of its `jti` ULID, else
/// `iat` (whole seconds, rounded down: such a token counts as older, never as newer).
pub fn issued_at_ms(claims: &Claims) -> i64 {
    ulid::Ulid::from_string(&claims.jti)
        .ok()
        .and_then(|u| i64::try_from(u.timestamp_ms()).ok())
        .filter(|ms| ms / 1000 >= claims.iat - 1 && ms / 1000 <= claims.iat + 1)
        .unwrap_or_else(|| claims.iat.saturating_mul(1000))
}

impl TokenGuard for RevocationGuard {
    fn check<'a>(&'a self, user: &'a AuthUser) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move { self.check_claims(&user.tenant_id, user.user_id, &user.claims) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenType;

    fn fresh() -> RevocationGuard {
        let guard = RevocationGuard::new(RevocationConfig::default());
        guard.sync.lock().unwrap().last_ok = Some(Instant::now());
        guard
    }

    fn claims(tenant: TenantId, role: Role) -> Claims {
        Claims::new(TokenType::Access, 7, tenant, "a@b.co", role, "crm", Duration::from_secs(60))
    }

    #[test]
    fn refuses_tokens_issued_before_the_change_and_deactivated_users() {
        let guard = fresh();
        let tenant = TenantId::new();
        let old = claims(tenant, Role::Admin);
        let issued = issued_at_ms(&old);
        assert!(guard.check_claims(&tenant, 7, &old).is_ok());

        guard.apply(tenant, 7, Revocation { valid_after_ms: issued + 1, deactivated: false });
        let err = guard.check_claims(&tenant, 7, &old).unwrap_err();
        assert_eq!((err.status(), err.code()), (StatusCode::UNAUTHORIZED, codes::TOKEN_REVOKED));
        // Same tenant, other user; other tenant, same user id: unaffected.
        assert!(guard.check_claims(&tenant, 8, &old).is_ok());
        assert!(guard.check_claims(&TenantId::new(), 7, &old).is_ok());

        guard.apply(tenant, 7, Revocation { valid_after_ms: issued, deactivated: false });
        assert!(guard.check_claims(&tenant, 7, &old).is_ok(), "issued in the same millisecond: accepted");

        guard.apply(tenant, 7, Revocation { valid_after_ms: 0, deactivated: true });
        assert_eq!(guard.check_claims(&tenant, 7, &old).unwrap_err().code(), codes::TOKEN_REVOKED);
    }

    #[test]
    fn a_revoked_token_is_refused_and_only_that_one() {
        let guard = fresh();
        let tenant = TenantId::new();
        let signed_out = claims(tenant, Role::Admin);
        let other = claims(tenant, Role::Admin);
        guard.revoke_token(&signed_out.jti, signed_out.exp);
        let err = guard.check_claims(&tenant, 7, &signed_out).unwrap_err();
        assert_eq!((err.status(), err.code()), (StatusCode::UNAUTHORIZED, codes::TOKEN_REVOKED));
        assert!(guard.check_claims(&tenant, 7, &other).is_ok(), "another session of the same user stays valid");
        assert_eq!(guard.revoked_tokens(), 1);
    }

    #[test]
    fn issue_time_has_millisecond_precision_and_falls_back_to_iat() {
        let mut c = claims(TenantId::new(), Role::Viewer);
        let ms = issued_at_ms(&c);
        assert_eq!(ms / 1000, c.iat);
        c.jti = "not-a-ulid".into();
        assert_eq!(issued_at_ms(&c), c.iat * 1000);
        // A jti whose time disagrees with iat is not trusted.
        c.jti = ulid::Ulid::from_parts(0, 1).to_string();
        assert_eq!(issued_at_ms(&c), c.iat * 1000);
    }

    #[test]
    fn service_tokens_pass_and_stale_state_fails_closed() {
        let guard = RevocationGuard::new(RevocationConfig::default());
        let tenant = TenantId::new();
        assert!(guard.check_claims(&tenant, 0, &claims(tenant, Role::Service)).is_ok());
        let err = guard.check_claims(&tenant, 7, &claims(tenant, Role::Viewer)).unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
