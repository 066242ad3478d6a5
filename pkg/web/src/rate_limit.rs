//! The API rate limit: every authenticated request counts against its user and its tenant
//! (seed 002, requirements 7.1 and 7.3: every external API call is rate limited, 429 with
//! `Retry-After` beyond). The buckets are `governor`'s GCRA, in memory, per process.
//!
//! * Quotas are per minute, with a burst of one minute's worth: `RATE_LIMIT_USER_PER_MINUTE`
//!   (default 1,200 = 20/s) and `RATE_LIMIT_TENANT_PER_MINUTE` (default 6,000 = 100/s); 0 turns
//!   one off. `RATE_LIMIT_TENANT_OVERRIDES` (`<tenant id>=<per minute>,...`) gives a tenant its
//!   own tenant quota (0: none).
//! * Every answer carries the IETF draft's fields (draft-ietf-httpapi-ratelimit-headers):
//!   `RateLimit-Policy: "tenant";q=6000;w=60, "user";q=1200;w=60` and
//!   `RateLimit: "tenant";r=5990;t=1, "user";r=1190;t=1` (r = requests left now, t = seconds
//!   until the bucket is full again); a refusal is 429 `RATE_LIMITED` with `Retry-After`.
//! * Not counted: requests without a bearer token (login, signup and password reset have
//!   their own per-address limits; tracking pixels and links must never fail), tokens that do
//!   not verify (the handler answers 401), and sub-requests of another service of the platform
//!   made for the same token ([`crm_client_core::X_INTERNAL_PROOF`]): a user's request is
//!   counted once, where it enters.
//! * Several replicas: each process keeps its own buckets, so with N replicas behind a
//!   round-robin balancer a tenant gets up to N times the quota; set the quotas to
//!   `wanted / replicas` (docs/API.md, "Rate limits"). A shared store would cost a round trip
//!   per request, which is what this limit protects.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_client_core::{InternalKey, X_INTERNAL_PROOF};
use crm_tenant::TenantId;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

use crate::ApiError;
use crate::auth::{JwtKeys, bearer_token};

/// `RateLimit-Policy` (IETF draft): the quotas that apply to the request.
pub const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (IETF draft): what is left of each quota.
pub const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;
type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

fn keyed<K: Clone + Eq + std::hash::Hash>(quota: Quota) -> Keyed<K> {
    RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>()
}

/// Quotas, in requests per minute; 0 = no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub user_per_minute: u32,
    pub tenant_per_minute: u32,
    /// A tenant quota other than `tenant_per_minute` for these tenants (0: no tenant quota).
    pub tenant_overrides: HashMap<TenantId, u32>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { user_per_minute: 1_200, tenant_per_minute: 6_000, tenant_overrides: HashMap::new() }
    }
}

impl RateLimitConfig {
    /// Parses `RATE_LIMIT_TENANT_OVERRIDES`: `<tenant id>=<per minute>` pairs separated by
    /// commas (spaces ignored, empty = none). The error names the bad pair.
    pub fn parse_overrides(value: &str) -> Result<HashMap<TenantId, u32>, String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let bad = || format!("{pair:?} is not <tenant id>=<requests per minute>");
                let (id, quota) = pair.split_once('=').ok_or_else(bad)?;
                let id = TenantId::from_str(id.trim()).map_err(|_| bad())?;
                let quota = quota.trim().parse::<u32>().map_err(|_| bad())?;
                Ok((id, quota))
            })
            .collect()
    }
}

/// One quota: its name in the headers, its size, and its buckets.
struct Policy<L> {
    name: &'static str,
    per_minute: u32,
    limiter: L,
}

impl<L> Policy<L> {
    fn new(name: &'static str, per_minute: u32, build: impl FnOnce(Quota) -> L) -> Option<Self> {
        let per_minute_nz = NonZeroU32::new(per_minute)?;
        Some(Self { name, per_minute, limiter: build(Quota::per_minute(per_minute_nz)) })
    }
}

/// The outcome of one policy for one request.
enum Decision {
    Allowed { name: &'static str, per_minute: u32, snapshot: StateSnapshot },
    Refused { name: &'static str, per_minute: u32, wait: Duration },
}

/// The limiter shared by every router of a process (`crm serve` serves five services from
/// one process: a user's quota is the same whichever service it calls).
pub struct RateLimits {
    keys: Arc<JwtKeys>,
    internal: InternalKey,
    clock: DefaultClock,
    user: Option<Policy<Keyed<(TenantId, i32)>>>,
    tenant: Option<Policy<Keyed<TenantId>>>,
    /// `None`: the tenant has no tenant quota.
    overrides: HashMap<TenantId, Option<Policy<Direct>>>,
    checks: AtomicU64,
}

/// Keyed buckets of users and tenants not seen for a while are dropped every this many checks.
const HOUSEKEEPING_EVERY: u64 = 8_192;

impl RateLimits {
    /// `keys` verify the tokens (a forged token must not spend another tenant's quota);
    /// `internal` verifies the platform's sub-requests.
    pub fn new(config: &RateLimitConfig, keys: Arc<JwtKeys>, internal: InternalKey) -> Self {
        Self {
            keys,
            internal,
            clock: DefaultClock::default(),
            user: Policy::new("user", config.user_per_minute, keyed),
            tenant: Policy::new("tenant", config.tenant_per_minute, keyed),
            overrides: config
                .tenant_overrides
                .iter()
                .map(|(id, &quota)| {
                    (*id, Policy::new("tenant", quota, |q| RateLimiter::direct(q).with_middleware::<StateInformationMiddleware>()))
                })
                .collect(),
            checks: AtomicU64::new(0),
        }
    }

    /// The decisions for a request with this bearer token, or `None` when it is not counted.
    fn decide(&self, token: &str, proof: Option<&str>) -> Option<Vec<Decision>> {
        if proof.is_some_and(|p| self.internal.verifies(token, p)) {
            return None;
        }
        let claims = self.keys.verify_access(token).ok()?;
        let user_id = claims.sub.parse::<i32>().ok()?;
        let tenant = claims.tenant_id;
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY == HOUSEKEEPING_EVERY - 1 {
            self.housekeeping();
        }
        let now = self.clock.now();
        let decide = |name, per_minute, outcome: Result<StateSnapshot, NotUntil<_>>| match outcome {
            Ok(snapshot) => Decision::Allowed { name, per_minute, snapshot },
            Err(not_until) => Decision::Refused { name, per_minute, wait: not_until.wait_time_from(now) },
        };
        let mut decisions = Vec::with_capacity(2);
        // The tenant first: a refused tenant does not spend its users' quotas.
        if let Some(overridden) = self.overrides.get(&tenant) {
            if let Some(policy) = overridden {
                decisions.push(decide(policy.name, policy.per_minute, policy.limiter.check()));
            }
        } else if let Some(policy) = &self.tenant {
            decisions.push(decide(policy.name, policy.per_minute, policy.limiter.check_key(&tenant)));
        }
        let tenant_refused = decisions.iter().any(|d| matches!(d, Decision::Refused { .. }));
        if let Some(policy) = &self.user
            && !tenant_refused
        {
            decisions.push(decide(policy.name, policy.per_minute, policy.limiter.check_key(&(tenant, user_id))));
        }
        Some(decisions)
    }

    fn housekeeping(&self) {
        if let Some(policy) = &self.user {
            policy.limiter.retain_recent();
            policy.limiter.shrink_to_fit();
        }
        if let Some(policy) = &self.tenant {
            policy.limiter.retain_recent();
            policy.limiter.shrink_to_fit();
        }
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`): counts the request, refuses it
/// with 429 when a quota is spent, and adds the `RateLimit-Policy` / `RateLimit` fields.
pub async fn limit(State(limits): State<Arc<RateLimits>>, req: Request, next: Next) -> Response {
    let token = bearer_token(req.headers()).ok().flatten();
    let proof = req.headers().get(X_INTERNAL_PROOF).and_then(|v| v.to_str().ok());
    let Some(decisions) = token.and_then(|token| limits.decide(token, proof)).filter(|d| !d.is_empty()) else {
        return next.run(req).await;
    };
    let refused = decisions.iter().find_map(|d| match d {
        Decision::Refused { wait, .. } => Some(*wait),
        Decision::Allowed { .. } => None,
    });
    let mut response = match refused {
        // Whole seconds, rounded up: a client that waits `Retry-After` is admitted.
        Some(wait) => ApiError::too_many_requests(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).into_response(),
        None => next.run(req).await,
    };
    let (policy, remaining) = fields(&decisions);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(RATE_LIMIT_POLICY, value);
    }
    if let Ok(value) = HeaderValue::from_str(&remaining) {
        headers.insert(RATE_LIMIT, value);
    }
    response
}

/// The two header values for a request's decisions.
fn fields(decisions: &[Decision]) -> (String, String) {
    let mut policy = Vec::with_capacity(decisions.len());
    let mut remaining = Vec::with_capacity(decisions.len());
    for decision in decisions {
        let (name, per_minute, left, reset) = match decision {
            Decision::Allowed { name, per_minute, snapshot } => {
                let left = snapshot.remaining_burst_capacity();
                // Until the bucket is full again: one replenish interval per missing request.
                let interval = snapshot.quota().replenish_interval();
                (name, per_minute, left, interval * per_minute.saturating_sub(left))
            }
            Decision::Refused { name, per_minute, wait } => (name, per_minute, 0, *wait),
        };
        policy.push(format!("\"{name}\";q={per_minute};w=60"));
        remaining.push(format!("\"{name}\";r={left};t={}", reset.as_secs() + u64::from(reset.subsec_nanos() > 0)));
    }
    (policy.join(", "), remaining.join(", "))
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;
    use crate::auth::{Claims, Role, TokenType};

    const SECRET: &[u8] = b"rate-limit-test-secret-0123456789abcdef";

    fn keys() -> Arc<JwtKeys> {
        Arc::new(JwtKeys::new(SECRET, "crm"))
    }

    fn token(tenant: TenantId, user: i32) -> String {
        let claims = Claims::new(TokenType::Access, user, tenant, "u@example.com", Role::SalesRep, "crm", Duration::from_secs(600));
        keys().issue(&claims).unwrap()
    }

    fn app(config: &RateLimitConfig) -> Router {
        let limits = Arc::new(RateLimits::new(config, keys(), InternalKey::derive(SECRET)));
        Router::new().route("/x", get(|| async { "ok" })).layer(from_fn_with_state(limits, limit))
    }

    async fn call(app: &Router, token: Option<&str>, proof: Option<&str>) -> axum::response::Response {
        let mut req = Request::get("/x");
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(proof) = proof {
            req = req.header(X_INTERNAL_PROOF, proof);
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    fn header<'a>(response: &'a axum::response::Response, name: &HeaderName) -> &'a str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[tokio::test]
    async fn a_user_past_its_quota_gets_429_with_retry_after_and_the_draft_fields() {
        let app = app(&RateLimitConfig { user_per_minute: 3, tenant_per_minute: 100, ..Default::default() });
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let alice = token(tenant, 1);
        let first = call(&app, Some(&alice), None).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(header(&first, &RATE_LIMIT_POLICY), "\"tenant\";q=100;w=60, \"user\";q=3;w=60");
        assert!(header(&first, &RATE_LIMIT).contains("\"user\";r=2;t="), "{}", header(&first, &RATE_LIMIT));
        for _ in 0..2 {
            assert_eq!(call(&app, Some(&alice), None).await.status(), StatusCode::OK);
        }
        let refused = call(&app, Some(&alice), None).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = header(&refused, &header::RETRY_AFTER).parse().unwrap();
        assert!((1..=20).contains(&retry_after), "one request comes back every 20 s: {retry_after}");
        assert!(header(&refused, &RATE_LIMIT).contains("\"user\";r=0;"));
        // Another user of the tenant, and a user of another tenant, are not affected.
        assert_eq!(call(&app, Some(&token(tenant, 2)), None).await.status(), StatusCode::OK);
        assert_eq!(call(&app, Some(&token(other, 1)), None).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_tenant_quota_covers_all_its_users_and_an_override_replaces_it() {
        let (busy, big, unlimited) = (TenantId::new(), TenantId::new(), TenantId::new());
        let config = RateLimitConfig {
            user_per_minute: 0,
            tenant_per_minute: 2,
            tenant_overrides: HashMap::from([(big, 5), (unlimited, 0)]),
        };
        let app = app(&config);
        assert_eq!(call(&app, Some(&token(busy, 1)), None).await.status(), StatusCode::OK);
        assert_eq!(call(&app, Some(&token(busy, 2)), None).await.status(), StatusCode::OK);
        assert_eq!(call(&app, Some(&token(busy, 3)), None).await.status(), StatusCode::TOO_MANY_REQUESTS);
        for user in 1..=5 {
            let response = call(&app, Some(&token(big, user)), None).await;
            assert_eq!(response.status(), StatusCode::OK, "user {user} of the tenant with an override");
            assert_eq!(header(&response, &RATE_LIMIT_POLICY), "\"tenant\";q=5;w=60");
        }
        assert_eq!(call(&app, Some(&token(big, 6)), None).await.status(), StatusCode::TOO_MANY_REQUESTS);
        for user in 1..=5 {
            let response = call(&app, Some(&token(unlimited, user)), None).await;
            assert_eq!(response.status(), StatusCode::OK, "a tenant whose override is 0 has no tenant quota");
            assert!(response.headers().get(RATE_LIMIT_POLICY).is_none());
        }
    }

    #[tokio::test]
    async fn sub_requests_with_a_valid_proof_and_requests_without_a_valid_token_are_not_counted() {
        let app = app(&RateLimitConfig { user_per_minute: 1, tenant_per_minute: 0, ..Default::default() });
        let alice = token(TenantId::new(), 1);
        let proof = InternalKey::derive(SECRET).proof(&alice);
        assert_eq!(call(&app, Some(&alice), None).await.status(), StatusCode::OK);
        for _ in 0..5 {
            let response = call(&app, Some(&alice), Some(&proof)).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert!(response.headers().get(RATE_LIMIT).is_none());
        }
        // A proof made with another key, or for another token, is no proof.
        let forged = InternalKey::derive(b"not-the-platform-secret-0123456789abcdef").proof(&alice);
        assert_eq!(call(&app, Some(&alice), Some(&forged)).await.status(), StatusCode::TOO_MANY_REQUESTS);
        for _ in 0..3 {
            assert_eq!(call(&app, None, None).await.status(), StatusCode::OK);
            assert_eq!(call(&app, Some("not-a-jwt"), None).await.status(), StatusCode::OK);
        }
    }

    #[test]
    fn overrides_parse_and_name_the_bad_pair() {
        let id = TenantId::new();
        let parsed = RateLimitConfig::parse_overrides(&format!(" {id}=600 , ")).unwrap();
        assert_eq!(parsed, HashMap::from([(id, 600)]));
        assert!(RateLimitConfig::parse_overrides("").unwrap().is_empty());
        let err = RateLimitConfig::parse_overrides(&format!("{id}=600,acme=5")).unwrap_err();
        assert!(err.contains("acme=5"), "{err}");
        assert!(RateLimitConfig::parse_overrides(&format!("{id}=-1")).is_err());
    }
}
