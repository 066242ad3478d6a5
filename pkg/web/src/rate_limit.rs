//! The API rate limit: every authenticated request counts against its user and its tenant
//! (seed 002, requirements 7.1 and 7.3: every external API call is rate limited, 429 with
//! `Retry-After` beyond). The buckets are `governor`'s GCRA, in memory, per process.
//!
//! * Quotas are per minute, with a burst of one minute's worth: `RATE_LIMIT_USER_PER_MINUTE`
//!   (default 1,200 = 20/s) and `RATE_LIMIT_TENANT_PER_MINUTE` (default 6,000 = 100/s); 0 turns
//!   one off. `RATE_LIMIT_TENANT_OVERRIDES` (`<tenant id>=<per minute>,...`) gives a tenant its
//!   own tenant quota (0: none).
//! * Shaping before refusing (issue 14, item 4: a noisy tenant must not starve the others): a
//!   request over a quota waits for its turn, in arrival order per tenant, for up to
//!   `RATE_LIMIT_MAX_DELAY_MS` (default 1,000; 0 = refuse at once; each request is held between
//!   half and all of it, spread so that refusals do not come in waves). If the bucket admits it
//!   within that time it is served (late, not refused); otherwise it gets 429 at the end of the
//!   wait, with `Retry-After` computed then. Why: a client that sends its next request as soon
//!   as the previous one is answered (a closed loop: most scripts and load tools) otherwise
//!   turns a refusal into the next request at once, and refusing tens of thousands of requests
//!   a second takes the cores every other tenant needs; held for the delay, 256 such
//!   connections make at most 256 refusals a second plus the quota. A waiting request is a
//!   parked task (a timer, no CPU). At most `RATE_LIMIT_MAX_WAITING` (default 1,024) requests of
//!   one tenant wait at once; beyond that they are refused at once (a flood of connections
//!   cannot hold unbounded memory). `Retry-After` keeps its meaning: when the bucket will admit
//!   a request again, counted from the refusal (so a client honouring it is admitted).
//! * Every answer carries the IETF draft's fields (draft-ietf-httpapi-ratelimit-headers):
//!   `RateLimit-Policy: "tenant";q=6000;w=60, "user";q=1200;w=60` and
//!   `RateLimit: "tenant";r=5990;t=1, "user";r=1190;t=1` (r = requests left now, t = seconds
//!   until the bucket is full again); a refusal is 429 `RATE_LIMITED` with `Retry-After`.
//! * After the quota, per-tenant admission ([`crate::admission`]): a bounded number of a
//!   tenant's requests in flight, the rest waiting in order.
//! * Not counted: requests without a bearer token (login, signup and password reset have
//!   their own per-address limits; tracking pixels and links must never fail), tokens that do
//!   not verify (the handler answers 401), and sub-requests of another service of the platform
//!   made for the same token ([`crm_client_core::X_INTERNAL_PROOF`]): a user's request is
//!   counted once, where it enters.
//! * Several replicas: each process keeps its own buckets, so with N replicas behind a
//!   round-robin balancer a tenant gets up to N times the quota; set the quotas to
//!   `wanted / replicas` (docs/API.md, "Rate limits"). A shared store would cost a round trip
//!   per request, which is what this limit protects. Shaping and admission are per process too:
//!   each replica protects its own cores and pool.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
use tokio::time::Instant;

use crate::ApiError;
use crate::admission::{Admission, AdmissionConfig};
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

/// Quotas, in requests per minute (0 = no limit), and how long a request over one may wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub user_per_minute: u32,
    pub tenant_per_minute: u32,
    /// A tenant quota other than `tenant_per_minute` for these tenants (0: no tenant quota).
    pub tenant_overrides: HashMap<TenantId, u32>,
    /// How long a request over a quota waits for its turn before 429
    /// (`RATE_LIMIT_MAX_DELAY_MS`, default 1 s; zero: refused at once).
    pub max_delay: Duration,
    /// Requests of one tenant waiting for their turn at once; more are refused at once
    /// (`RATE_LIMIT_MAX_WAITING`, default 1,024).
    pub max_waiting: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            user_per_minute: 1_200,
            tenant_per_minute: 6_000,
            tenant_overrides: HashMap::new(),
            max_delay: Duration::from_secs(1),
            max_waiting: 1_024,
        }
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

/// How long until every refused policy of these decisions admits a request (`None`: allowed).
fn refused_for(decisions: &[Decision]) -> Option<Duration> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Refused { wait, .. } => Some(*wait),
            Decision::Allowed { .. } => None,
        })
        .max()
}

/// Who a counted request is for (from its verified token).
#[derive(Clone, Copy)]
struct Counted {
    tenant: TenantId,
    user: i32,
}

/// One tenant's requests waiting for their turn: a fair (FIFO) lock that only the first of
/// them holds, so one waiter polls the buckets instead of all of them at every refill.
struct Turnstile {
    lock: tokio::sync::Mutex<()>,
    waiting: AtomicUsize,
}

/// Decrements a waiting count however the wait ends (also when the client goes away).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
    max_delay: Duration,
    max_waiting: usize,
    turnstiles: Mutex<HashMap<TenantId, Arc<Turnstile>>>,
    admission: Option<Admission>,
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
            max_delay: config.max_delay,
            max_waiting: config.max_waiting,
            turnstiles: Mutex::new(HashMap::new()),
            admission: None,
            checks: AtomicU64::new(0),
        }
    }

    /// Adds per-tenant admission ([`crate::admission`]) after the quotas; a `max_in_flight`
    /// of 0 adds nothing.
    pub fn with_admission(mut self, config: AdmissionConfig) -> Self {
        self.admission = (config.max_in_flight > 0).then(|| Admission::new(config));
        self
    }

    /// Whether any quota or admission applies at all (if not, tokens are not even verified
    /// here; the handlers verify them).
    fn active(&self) -> bool {
        self.user.is_some() || self.tenant.is_some() || !self.overrides.is_empty() || self.admission.is_some()
    }

    /// Who a request with this bearer token counts against, or `None` when it is not counted.
    fn counted(&self, token: &str, proof: Option<&str>) -> Option<Counted> {
        if !self.active() || proof.is_some_and(|p| self.internal.verifies(token, p)) {
            return None;
        }
        let claims = self.keys.verify_access(token).ok()?;
        let user = claims.sub.parse::<i32>().ok()?;
        Some(Counted { tenant: claims.tenant_id, user })
    }

    /// Spends one request of each quota that applies; the decisions in header order (tenant,
    /// then user).
    fn check(&self, who: Counted) -> Vec<Decision> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY == HOUSEKEEPING_EVERY - 1 {
            self.housekeeping();
        }
        let now = self.clock.now();
        let decide = |name, per_minute, outcome: Result<StateSnapshot, NotUntil<_>>| match outcome {
            Ok(snapshot) => Decision::Allowed { name, per_minute, snapshot },
            Err(not_until) => Decision::Refused { name, per_minute, wait: not_until.wait_time_from(now) },
        };
        // The user first: a user past its own quota does not spend the quota its tenant's
        // other users share (its retries while it waits would drain it). A refused tenant
        // spends the user's own request, which only that user's later requests miss.
        let user = self.user.as_ref().map(|p| decide(p.name, p.per_minute, p.limiter.check_key(&(who.tenant, who.user))));
        let user_refused = matches!(user, Some(Decision::Refused { .. }));
        let tenant = if user_refused {
            None
        } else if let Some(overridden) = self.overrides.get(&who.tenant) {
            overridden.as_ref().map(|p| decide(p.name, p.per_minute, p.limiter.check()))
        } else {
            self.tenant.as_ref().map(|p| decide(p.name, p.per_minute, p.limiter.check_key(&who.tenant)))
        };
        tenant.into_iter().chain(user).collect()
    }

    /// A request over a quota waits for its turn (module doc, "Shaping"): the decisions it is
    /// finally answered with.
    async fn shape(&self, who: Counted, refused: Vec<Decision>) -> Vec<Decision> {
        if self.max_delay.is_zero() {
            return refused;
        }
        let turnstile = self.turnstile(who.tenant);
        if turnstile.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            turnstile.waiting.fetch_sub(1, Ordering::Relaxed);
            return refused;
        }
        let _waiting = Waiting(&turnstile.waiting);
        let deadline = Instant::now() + self.hold(turnstile.waiting.load(Ordering::Relaxed));
        // In arrival order: only the first waiter of the tenant checks the buckets.
        let Ok(turn) = tokio::time::timeout_at(deadline, turnstile.lock.lock()).await else {
            return self.check(who);
        };
        loop {
            let decisions = self.check(who);
            let Some(wait) = refused_for(&decisions) else { return decisions };
            let ready = Instant::now() + wait;
            if ready > deadline {
                // Not within its delay: the next waiter (perhaps another user) tries, and this
                // one is answered at its deadline, so a closed-loop client is held that long.
                drop(turn);
                tokio::time::sleep_until(deadline).await;
                return self.check(who);
            }
            tokio::time::sleep_until(ready).await;
        }
    }

    /// How long this waiter may be held: between half and all of `max_delay`, spread by a
    /// cheap hash (no need for a random source). Why not always `max_delay`: connections of a
    /// closed-loop client that are refused together come back together, and held for the same
    /// time they are refused together again, in waves once a second; spread holds dissolve
    /// the waves, so other tenants do not see a burst of refusals at once.
    fn hold(&self, salt: usize) -> Duration {
        let n = self.checks.load(Ordering::Relaxed) ^ (salt as u64).rotate_left(32);
        let spread = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as u32; // 24 bits
        self.max_delay / 2 + (self.max_delay / 2).mul_f64(f64::from(spread) / f64::from(1u32 << 24))
    }

    fn turnstile(&self, tenant: TenantId) -> Arc<Turnstile> {
        let mut turnstiles = self.turnstiles.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        turnstiles
            .entry(tenant)
            .or_insert_with(|| Arc::new(Turnstile { lock: tokio::sync::Mutex::new(()), waiting: AtomicUsize::new(0) }))
            .clone()
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
        let mut turnstiles = self.turnstiles.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        turnstiles.retain(|_, t| Arc::strong_count(t) > 1 || t.waiting.load(Ordering::Relaxed) > 0);
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`): counts the request, holds it for
/// its turn or refuses it with 429 when a quota is spent, admits it among its tenant's
/// requests in flight ([`crate::admission`]), and adds the `RateLimit-Policy` / `RateLimit`
/// fields.
pub async fn limit(State(limits): State<Arc<RateLimits>>, req: Request, next: Next) -> Response {
    let token = bearer_token(req.headers()).ok().flatten();
    let proof = req.headers().get(X_INTERNAL_PROOF).and_then(|v| v.to_str().ok());
    let Some(who) = token.and_then(|token| limits.counted(token, proof)) else {
        return next.run(req).await;
    };
    let mut decisions = limits.check(who);
    if refused_for(&decisions).is_some() {
        decisions = limits.shape(who, decisions).await;
    }
    let mut response = match refused_for(&decisions) {
        // Whole seconds, rounded up: a client that waits `Retry-After` is admitted.
        Some(wait) => ApiError::too_many_requests(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).into_response(),
        None => match &limits.admission {
            None => next.run(req).await,
            Some(admission) => match admission.admit(who.tenant).await {
                Ok(slot) => {
                    let response = next.run(req).await;
                    drop(slot);
                    response
                }
                Err(busy) => busy.into_response(),
            },
        },
    };
    if decisions.is_empty() {
        return response;
    }
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

    /// The limits most tests use: a request over a quota waits 50 ms before its 429.
    fn quick() -> RateLimitConfig {
        RateLimitConfig { max_delay: Duration::from_millis(50), ..Default::default() }
    }

    fn app(config: &RateLimitConfig) -> Router {
        app_with(Arc::new(RateLimits::new(config, keys(), InternalKey::derive(SECRET))))
    }

    /// `/x` answers at once; `/hold` answers when `RELEASE` is notified.
    fn app_with(limits: Arc<RateLimits>) -> Router {
        Router::new()
            .route("/x", get(|| async { "ok" }))
            .route("/hold", get(|| async { release().notified().await; "held" }))
            .layer(from_fn_with_state(limits, limit))
    }

    fn release() -> &'static tokio::sync::Notify {
        static RELEASE: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
        RELEASE.get_or_init(tokio::sync::Notify::new)
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
        let app = app(&RateLimitConfig { user_per_minute: 3, tenant_per_minute: 100, ..quick() });
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
            ..quick()
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
        let app = app(&RateLimitConfig { user_per_minute: 1, tenant_per_minute: 0, ..quick() });
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

    /// Calls `/x` `n` times at once; the statuses and the longest answer time.
    async fn burst(app: &Router, token: &str, n: usize) -> (Vec<StatusCode>, Duration) {
        let started = std::time::Instant::now();
        let calls = (0..n).map(|_| async { call(app, Some(token), None).await.status() });
        let statuses = futures::future::join_all(calls).await;
        (statuses, started.elapsed())
    }

    #[tokio::test]
    async fn a_request_over_the_quota_waits_for_its_turn_and_is_refused_only_past_the_delay() {
        // 600 a minute: one request every 100 ms once the burst is spent.
        let config = RateLimitConfig { user_per_minute: 0, tenant_per_minute: 600, max_delay: Duration::from_secs(1), ..Default::default() };
        let app = app(&config);
        let alice = token(TenantId::new(), 1);
        let (statuses, _) = burst(&app, &alice, 600).await;
        assert!(statuses.iter().all(|s| *s == StatusCode::OK));
        // Five more fit in the delay: served late, in turn, not refused.
        let (statuses, elapsed) = burst(&app, &alice, 5).await;
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
        assert!(elapsed >= Duration::from_millis(300), "five turns take about 500 ms: {elapsed:?}");
        // Twenty more: five to ten turns come within the hold (half to all of the delay); the
        // rest get 429 at its end.
        let started = std::time::Instant::now();
        let calls = (0..20).map(|_| async {
            let response = call(&app, Some(&alice), None).await;
            (response.status(), started.elapsed(), header(&response, &header::RETRY_AFTER).to_owned())
        });
        let answers = futures::future::join_all(calls).await;
        let served = answers.iter().filter(|(s, ..)| *s == StatusCode::OK).count();
        assert!((3..=14).contains(&served), "{answers:?}");
        for (status, at, retry_after) in &answers {
            if *status == StatusCode::TOO_MANY_REQUESTS {
                assert!(*at >= Duration::from_millis(500), "refused before half its delay: {at:?}");
                assert_eq!(retry_after, "1", "the next turn is within a second");
            }
        }
    }

    #[tokio::test]
    async fn past_the_waiting_bound_or_with_no_delay_a_request_is_refused_at_once() {
        let config = RateLimitConfig {
            user_per_minute: 0,
            tenant_per_minute: 60,
            max_delay: Duration::from_millis(2_400),
            max_waiting: 2,
            ..Default::default()
        };
        let limits = Arc::new(RateLimits::new(&config, keys(), InternalKey::derive(SECRET)));
        let app = app_with(limits.clone());
        let tenant = TenantId::new();
        let alice = token(tenant, 1);
        assert!(burst(&app, &alice, 60).await.0.iter().all(|s| *s == StatusCode::OK));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (app, alice) = (app.clone(), alice.clone());
                tokio::spawn(async move { call(&app, Some(&alice), None).await.status() })
            })
            .collect();
        crm_wait(|| limits.turnstile(tenant).waiting.load(Ordering::Relaxed) == 2).await;
        let started = std::time::Instant::now();
        assert_eq!(call(&app, Some(&alice), None).await.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(started.elapsed() < Duration::from_secs(1), "refused at once: {:?}", started.elapsed());
        // The first waiter gets the next turn (a second after the burst: within its hold of
        // 1.2-2.4 s); the second's (two seconds after it) may be within its hold or not.
        let statuses: Vec<_> = futures::future::join_all(waiters).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");

        let no_delay = RateLimitConfig { max_delay: Duration::ZERO, ..config };
        let refusing = app_with(Arc::new(RateLimits::new(&no_delay, keys(), InternalKey::derive(SECRET))));
        assert!(burst(&refusing, &alice, 60).await.0.iter().all(|s| *s == StatusCode::OK));
        let (statuses, elapsed) = burst(&refusing, &alice, 3).await;
        assert_eq!(statuses, [StatusCode::TOO_MANY_REQUESTS; 3]);
        assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_tenant_past_its_requests_in_flight_waits_but_others_and_sub_requests_do_not() {
        let config = RateLimitConfig { user_per_minute: 0, tenant_per_minute: 0, ..quick() };
        let admission = AdmissionConfig { max_in_flight: 1, max_wait: Duration::from_millis(300), max_queued: 10 };
        let app = app_with(Arc::new(RateLimits::new(&config, keys(), InternalKey::derive(SECRET)).with_admission(admission)));
        let tenant = TenantId::new();
        let alice = token(tenant, 1);
        let held = {
            let (app, alice) = (app.clone(), alice.clone());
            tokio::spawn(async move {
                let req = Request::get("/hold").header(header::AUTHORIZATION, format!("Bearer {alice}"));
                app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap().status()
            })
        };
        // While the tenant's one slot is held, its next request waits, then gets 503.
        let refused = loop {
            let response = call(&app, Some(&alice), None).await;
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                break response;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(header(&refused, &header::RETRY_AFTER), "1");
        // A sub-request made for that request is not admitted again (it would wait for the
        // slot its own request holds); another tenant is served.
        let proof = InternalKey::derive(SECRET).proof(&alice);
        assert_eq!(call(&app, Some(&alice), Some(&proof)).await.status(), StatusCode::OK);
        assert_eq!(call(&app, Some(&token(TenantId::new(), 1)), None).await.status(), StatusCode::OK);
        release().notify_one();
        assert_eq!(held.await.unwrap(), StatusCode::OK);
        assert_eq!(call(&app, Some(&alice), None).await.status(), StatusCode::OK);
    }

    /// Yields until `condition` holds.
    async fn crm_wait(condition: impl Fn() -> bool) {
        for _ in 0..100_000 {
            if condition() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("condition not reached");
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
