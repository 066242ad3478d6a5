//! Per-tenant, in-process caches of the records other services show by name (users,
//! companies, contacts, deals), so that enriching a response costs nothing when warm: a GET
//! by id whose names are cached makes no call to another service.
//!
//! * Filled by the batch lookups of the typed clients (`CachedAuthClient`,
//!   `CachedContactClient`, `CachedDealClient` in the client crates wrap the HTTP clients and
//!   implement the same traits); misses only are asked for, in one request.
//! * Keyed by tenant first: every key holds the tenant of the call ([`CallContext::tenant`]),
//!   so two tenants with the same user id never see each other's names. A call without a
//!   tenant (system work with a service token) is not cached at all.
//! * Invalidated by events: [`NameScopes::follow`] subscribes (core NATS, every instance sees
//!   every event) to `user.>`, `company.>`, `contact.>` and `deal.>`; an event drops every
//!   cached record of its kind in its tenant, within milliseconds of the change's commit
//!   (the outbox relay publishes right after it). The same bound as token revocations
//!   (`crm_web::revocation`: "about a second").
//! * Safe against the fill race: a lookup takes its tenant's *generation* before it asks the
//!   other service and stores what it got under that generation. An invalidation gives the
//!   tenant a new generation (from one process-wide counter, never reused), so an answer
//!   read before the change and stored after its event lands under a generation nobody
//!   reads any more.
//! * While the subscription is not in place (start-up, NATS disconnected, and right after a
//!   reconnect, when events may have been missed) nothing is served from the cache and
//!   everything cached before is dropped: correct first, fast second.
//! * A TTL ([`NameCacheConfig::ttl`], 60 s) is the safety net for an event lost while
//!   connected (core NATS is at-most-once: a slow subscriber's messages are dropped), and
//!   a capacity bound per kind keeps memory flat (moka's TinyLFU eviction).
//!
//! Only the lookups every member of a tenant may make are cached (users, companies,
//! contacts and deals are readable by every role: `pkg/web/PERMISSIONS.md`), so an entry
//! filled with one user's token can serve another user of the same tenant. Full records
//! (`GET /contacts/{id}` through the client, users by email) are never cached.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;

use crate::CallContext;

/// The kinds of records cached, each invalidated by the events of its subject prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// auth-service users (`user.*` events).
    User,
    /// contact-service companies (`company.*`).
    Company,
    /// contact-service contacts (`contact.*`, including consent changes).
    Contact,
    /// deal-service deals (`deal.*`).
    Deal,
}

impl NameKind {
    pub const ALL: [NameKind; 4] = [Self::User, Self::Company, Self::Contact, Self::Deal];

    /// The NATS subjects whose events change records of this kind.
    pub fn subject(self) -> &'static str {
        match self {
            Self::User => "user.>",
            Self::Company => "company.>",
            Self::Contact => "contact.>",
            Self::Deal => "deal.>",
        }
    }

    /// The kind an event type (`"user.updated"`) changes, by its first token.
    pub fn of_event(event_type: &str) -> Option<Self> {
        match event_type.split('.').next()? {
            "user" => Some(Self::User),
            "company" => Some(Self::Company),
            "contact" => Some(Self::Contact),
            "deal" => Some(Self::Deal),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How long an entry may live without an event, and how many entries each kind keeps.
#[derive(Debug, Clone, Copy)]
pub struct NameCacheConfig {
    /// Safety net only: events invalidate within milliseconds.
    pub ttl: Duration,
    /// Entries per kind, all tenants together.
    pub capacity: u64,
}

impl Default for NameCacheConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(60), capacity: 100_000 }
    }
}

/// A tenant's current generation of one kind: the key prefix its entries are stored under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    tenant: Arc<str>,
    generation: u64,
}

/// One process-wide source of generations: a number is never handed out twice, so a
/// forgotten generation can never become current again.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// The invalidation side shared by the caches of one service: the current generation of each
/// (kind, tenant), and whether events are being followed. Build one with [`NameScopes::new`],
/// hand it to the cached clients, and run [`NameScopes::follow`] as a background task.
pub struct NameScopes {
    config: NameCacheConfig,
    /// Cached entries are served only while this is set (see the module documentation).
    live: AtomicBool,
    /// Per kind: tenant -> its current scope. An absent tenant gets a fresh generation.
    scopes: [RwLock<HashMap<Box<str>, Scope>>; 4],
}

impl NameScopes {
    pub fn new(config: NameCacheConfig) -> Arc<Self> {
        Arc::new(Self { config, live: AtomicBool::new(false), scopes: Default::default() })
    }

    pub fn config(&self) -> NameCacheConfig {
        self.config
    }

    /// Whether cached entries are served now (events are being followed).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Serve cached entries from now on (or stop). Turning it on or off drops every
    /// generation, so nothing cached before is served afterwards: events may have been
    /// missed in between. Tests without NATS turn it on by hand.
    pub fn set_live(&self, live: bool) {
        self.invalidate_all();
        self.live.store(live, Ordering::Release);
    }

    /// The scope a lookup of `kind` for `ctx` reads and fills; `None` when this call is not
    /// cached (no tenant in the context, or events not followed).
    pub fn scope(&self, kind: NameKind, ctx: &CallContext) -> Option<Scope> {
        let tenant = ctx.tenant.as_deref()?;
        if !self.is_live() {
            return None;
        }
        let map = &self.scopes[kind.index()];
        if let Some(scope) = map.read().unwrap_or_else(|e| e.into_inner()).get(tenant) {
            return Some(scope.clone());
        }
        let mut map = map.write().unwrap_or_else(|e| e.into_inner());
        let scope = map.entry(tenant.into()).or_insert_with(|| Scope {
            tenant: tenant.into(),
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        });
        Some(scope.clone())
    }

    /// Every cached record of `kind` in `tenant` is forgotten (a new generation on next use).
    pub fn invalidate(&self, kind: NameKind, tenant: &str) {
        self.scopes[kind.index()].write().unwrap_or_else(|e| e.into_inner()).remove(tenant);
    }

    /// Every cached record of every tenant is forgotten.
    pub fn invalidate_all(&self) {
        for map in &self.scopes {
            map.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Applies one event: its type (`"user.updated"`) and tenant (`tenant_id` of the envelope).
    /// An event without a tenant drops that kind everywhere.
    pub fn apply(&self, event_type: &str, tenant: Option<&str>) {
        let Some(kind) = NameKind::of_event(event_type) else { return };
        match tenant.filter(|t| !t.is_empty()) {
            Some(tenant) => self.invalidate(kind, tenant),
            None => self.scopes[kind.index()].write().unwrap_or_else(|e| e.into_inner()).clear(),
        }
    }

    /// Follows the events of every [`NameKind`] on `nats` until `shutdown`, serving cached
    /// entries only while subscribed and connected (checked every `CONNECTION_CHECK`; after
    /// a reconnect everything cached before is dropped). Never returns early on a NATS
    /// failure: it retries, and meanwhile nothing is served from the cache.
    pub fn follow(
        self: Arc<Self>,
        nats: async_nats::Client,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        async move {
            tokio::select! {
                () = self.follow_until_closed(&nats) => {}
                () = shutdown => {}
            }
            self.set_live(false);
        }
    }

    async fn follow_until_closed(&self, nats: &async_nats::Client) {
        let mut retry = Duration::from_millis(200);
        loop {
            let mut subscriptions = Vec::with_capacity(NameKind::ALL.len());
            for kind in NameKind::ALL {
                match nats.subscribe(kind.subject()).await {
                    Ok(s) => subscriptions.push(s),
                    Err(e) => tracing::warn!(error = %e, "name cache: cannot subscribe; names are looked up uncached"),
                }
            }
            if subscriptions.len() < NameKind::ALL.len() {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(5));
                continue;
            }
            await_subscribed(nats).await;
            let mut messages = futures::stream::select_all(subscriptions);
            let mut check = tokio::time::interval(CONNECTION_CHECK);
            self.set_live(nats.connection_state() == async_nats::connection::State::Connected);
            loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(message) => match serde_json::from_slice::<EventHead>(&message.payload) {
                            Ok(event) => self.apply(&event.r#type, event.tenant_id.as_deref()),
                            // Not an event envelope: drop the kind of its subject everywhere.
                            Err(_) => self.apply(message.subject.as_str(), None),
                        },
                        // The client is closed: subscribe again (or wait for shutdown).
                        None => break,
                    },
                    _ = check.tick() => {
                        let connected = nats.connection_state() == async_nats::connection::State::Connected;
                        if connected != self.is_live() {
                            if connected {
                                // async-nats resubscribed on reconnect; wait until the server has it.
                                await_subscribed(nats).await;
                            }
                            tracing::debug!(connected, "name cache follows the NATS connection");
                            self.set_live(connected);
                        }
                    }
                }
            }
            self.set_live(false);
            tokio::time::sleep(retry).await;
        }
    }
}

/// How often [`NameScopes::follow`] looks at the NATS connection state: the longest a
/// disconnect can go unnoticed (stale entries meanwhile are bounded by this, not the TTL).
pub const CONNECTION_CHECK: Duration = Duration::from_millis(250);

/// The server handles a connection's operations in order: once a request made after the
/// subscriptions is answered (here: "no responders"), they are in place, and every event
/// published from then on is seen.
async fn await_subscribed(nats: &async_nats::Client) {
    let _ = tokio::time::timeout(Duration::from_secs(2), nats.request(nats.new_inbox(), "".into())).await;
}

/// The part of an event envelope an invalidation needs.
#[derive(serde::Deserialize)]
struct EventHead {
    r#type: String,
    tenant_id: Option<String>,
}

/// The cache of one record type `V` (e.g. `UserBasicInfo`) of one [`NameKind`], keyed by
/// tenant scope and id.
pub struct NameCache<V> {
    kind: NameKind,
    scopes: Arc<NameScopes>,
    entries: moka::sync::Cache<(Scope, i32), V>,
}

/// Split of a lookup into what the cache had and what must still be asked for.
pub struct Lookup<V> {
    /// The scope to store answers under (`None`: this call is not cached).
    pub scope: Option<Scope>,
    pub found: Vec<V>,
    /// Ids not cached, deduplicated, in the caller's order.
    pub missing: Vec<i32>,
}

impl<V: Clone + Send + Sync + 'static> NameCache<V> {
    pub fn new(kind: NameKind, scopes: Arc<NameScopes>) -> Self {
        let config = scopes.config();
        let entries = moka::sync::Cache::builder().max_capacity(config.capacity).time_to_live(config.ttl).build();
        Self { kind, scopes, entries }
    }

    /// The cached records among `ids` and the ids still to ask for. Take this *before* asking
    /// (the scope it returns is what makes a late answer harmless).
    pub fn lookup(&self, ctx: &CallContext, ids: &[i32]) -> Lookup<V> {
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        let unique = ids.iter().copied().filter(|id| seen.insert(*id));
        let Some(scope) = self.scopes.scope(self.kind, ctx) else {
            return Lookup { scope: None, found: Vec::new(), missing: unique.collect() };
        };
        let (mut found, mut missing) = (Vec::new(), Vec::new());
        for id in unique {
            match self.entries.get(&(scope.clone(), id)) {
                Some(v) => found.push(v),
                None => missing.push(id),
            }
        }
        Lookup { scope: Some(scope), found, missing }
    }

    /// Stores answers of a lookup under the scope [`NameCache::lookup`] gave.
    pub fn store<'a>(&self, scope: Option<&Scope>, records: impl IntoIterator<Item = &'a V>, id: impl Fn(&V) -> i32)
    where
        V: 'a,
    {
        let Some(scope) = scope else { return };
        for record in records {
            self.entries.insert((scope.clone(), id(record)), record.clone());
        }
    }

    /// Entries held (including ones of old generations not evicted yet); for tests and metrics.
    pub fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

/// Records in the order of `ids` (each once), from `found` in any order: the answer of a
/// cached batch lookup, so callers see the same order whatever was cached.
pub fn in_order<V>(ids: &[i32], found: Vec<V>, id: impl Fn(&V) -> i32) -> Vec<V> {
    let mut by_id: HashMap<i32, V> = found.into_iter().map(|v| (id(&v), v)).collect();
    ids.iter().filter_map(|i| by_id.remove(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Named {
        id: i32,
        name: &'static str,
    }

    fn ctx(tenant: &str) -> CallContext {
        CallContext::new("token").with_tenant(tenant)
    }

    fn live() -> Arc<NameScopes> {
        let scopes = NameScopes::new(NameCacheConfig::default());
        scopes.set_live(true);
        scopes
    }

    #[test]
    fn two_tenants_with_the_same_id_never_see_each_others_records() {
        let cache = NameCache::<Named>::new(NameKind::User, live());
        let (a, b) = (ctx("tenant-a"), ctx("tenant-b"));
        let la = cache.lookup(&a, &[1]);
        cache.store(la.scope.as_ref(), &[Named { id: 1, name: "Ada of A" }], |n| n.id);
        // B has not filled anything: its user 1 is a miss, not A's user 1.
        let lb = cache.lookup(&b, &[1]);
        assert!(lb.found.is_empty());
        assert_eq!(lb.missing, vec![1]);
        cache.store(lb.scope.as_ref(), &[Named { id: 1, name: "Bob of B" }], |n| n.id);
        assert_eq!(cache.lookup(&a, &[1]).found, vec![Named { id: 1, name: "Ada of A" }]);
        assert_eq!(cache.lookup(&b, &[1]).found, vec![Named { id: 1, name: "Bob of B" }]);
        // An event of tenant A forgets A's records only.
        cache.scopes.apply("user.updated", Some("tenant-a"));
        assert_eq!(cache.lookup(&a, &[1]).missing, vec![1]);
        assert_eq!(cache.lookup(&b, &[1]).found.len(), 1);
    }

    #[test]
    fn a_call_without_a_tenant_or_before_events_are_followed_is_not_cached() {
        let scopes = NameScopes::new(NameCacheConfig::default());
        let cache = NameCache::<Named>::new(NameKind::User, scopes.clone());
        let l = cache.lookup(&ctx("t"), &[1, 2, 1]);
        assert!(l.scope.is_none());
        assert_eq!(l.missing, vec![1, 2], "deduplicated, in order");
        scopes.set_live(true);
        let l = cache.lookup(&CallContext::new("service-token"), &[1]);
        assert!(l.scope.is_none(), "no tenant, no cache");
        let l = cache.lookup(&ctx("t"), &[1]);
        cache.store(l.scope.as_ref(), &[Named { id: 1, name: "x" }], |n| n.id);
        assert_eq!(cache.lookup(&ctx("t"), &[1]).found.len(), 1);
        // Losing the event stream forgets everything, and serves nothing until it is back.
        scopes.set_live(false);
        assert!(cache.lookup(&ctx("t"), &[1]).scope.is_none());
        scopes.set_live(true);
        assert_eq!(cache.lookup(&ctx("t"), &[1]).missing, vec![1]);
    }

    #[test]
    fn an_answer_read_before_an_invalidation_is_never_served_after_it() {
        let cache = NameCache::<Named>::new(NameKind::Contact, live());
        let t = ctx("t");
        // A lookup starts (takes its scope), the record is renamed and its event arrives,
        // then the lookup's (old) answer is stored.
        let before = cache.lookup(&t, &[7]);
        cache.scopes.apply("contact.updated", Some("t"));
        cache.store(before.scope.as_ref(), &[Named { id: 7, name: "old name" }], |n| n.id);
        assert_eq!(cache.lookup(&t, &[7]).missing, vec![7], "the old answer is not served");
        let after = cache.lookup(&t, &[7]);
        cache.store(after.scope.as_ref(), &[Named { id: 7, name: "new name" }], |n| n.id);
        assert_eq!(cache.lookup(&t, &[7]).found, vec![Named { id: 7, name: "new name" }]);
    }

    #[test]
    fn events_invalidate_their_kind_only() {
        let scopes = live();
        let users = NameCache::<Named>::new(NameKind::User, scopes.clone());
        let companies = NameCache::<Named>::new(NameKind::Company, scopes.clone());
        let t = ctx("t");
        for cache in [&users, &companies] {
            let l = cache.lookup(&t, &[1]);
            cache.store(l.scope.as_ref(), &[Named { id: 1, name: "x" }], |n| n.id);
        }
        scopes.apply("company.deleted", Some("t"));
        assert_eq!(users.lookup(&t, &[1]).found.len(), 1);
        assert_eq!(companies.lookup(&t, &[1]).missing, vec![1]);
        scopes.apply("tenant.updated", Some("t"));
        assert_eq!(users.lookup(&t, &[1]).found.len(), 1, "other subjects change nothing");
        scopes.apply("user.updated", None);
        assert_eq!(users.lookup(&t, &[1]).missing, vec![1], "no tenant: the kind everywhere");
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let scopes = NameScopes::new(NameCacheConfig { ttl: Duration::from_millis(50), capacity: 10 });
        scopes.set_live(true);
        let cache = NameCache::<Named>::new(NameKind::Deal, scopes);
        let t = ctx("t");
        let l = cache.lookup(&t, &[1]);
        cache.store(l.scope.as_ref(), &[Named { id: 1, name: "x" }], |n| n.id);
        assert_eq!(cache.lookup(&t, &[1]).found.len(), 1);
        // Polled: expired within a bound well past the TTL.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while cache.lookup(&t, &[1]).missing.is_empty() {
            assert!(std::time::Instant::now() < deadline, "still cached long after the TTL");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn kinds_follow_subject_prefixes_and_answers_keep_the_callers_order() {
        assert_eq!(NameKind::of_event("user.password_reset"), Some(NameKind::User));
        assert_eq!(NameKind::of_event("contact.consent_changed"), Some(NameKind::Contact));
        assert_eq!(NameKind::of_event("company.created"), Some(NameKind::Company));
        assert_eq!(NameKind::of_event("deal.closed_won"), Some(NameKind::Deal));
        assert_eq!(NameKind::of_event("email.sent"), None);
        let found = vec![Named { id: 3, name: "c" }, Named { id: 1, name: "a" }];
        assert_eq!(in_order(&[1, 2, 3], found, |n| n.id).iter().map(|n| n.id).collect::<Vec<_>>(), vec![1, 3]);
    }
}
