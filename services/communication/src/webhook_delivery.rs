//! Webhook delivery machinery (issue 15): the settings, the SSRF guard, Standard Webhooks
//! signing, the HTTP sender and the poll loop that delivers due rows of
//! `webhook_deliveries` (the use cases themselves are in [`crate::service::webhooks`]).
//!
//! * Signing follows Standard Webhooks (<https://www.standardwebhooks.com/>): headers
//!   `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
//!   (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, space-separated when a rotated secret
//!   still signs), secret `whsec_<base64>`, so integrators verify with an existing library.
//! * SSRF guard: a target whose host resolves to a loopback, private, link-local,
//!   unique-local, multicast, unspecified (or otherwise non-global) address is refused when
//!   the webhook is saved AND when it is delivered (the HTTP client resolves through
//!   [`GuardedResolver`], so a name re-pointed after the check, "DNS rebinding", gets no
//!   connection), unless `WEBHOOK_ALLOWED_HOSTS` lists the host or the address. No proxy
//!   is used and redirects are not followed (a redirect is a failed attempt).
//! * Scheduling: rows with `next_attempt_at`, claimed with `FOR UPDATE SKIP LOCKED` and
//!   leased (the claim moves `next_attempt_at` past the HTTP timeout), so any number of
//!   instances deliver each attempt once; a crashed instance's lease simply expires.
//!   Each instance polls the tenants it knows have due work ([`DueHints`]: deliveries it
//!   enqueued, and what the periodic sweep of all active tenants found), so a tick costs
//!   nothing for tenants without webhooks.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use crm_runtime::{SettingsError, settings};
use crm_tenant::TenantId;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use rand::Rng;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;

use crate::AppState;

/// Prefix of Standard Webhooks secrets.
pub const SECRET_PREFIX: &str = "whsec_";
/// Characters of a response body kept with an attempt (the rest is never read).
pub const EXCERPT_CHARS: usize = 512;
/// Longest accepted target URL.
pub const MAX_URL: usize = 2048;

/// Webhook settings (part of [`crate::Settings`], read by [`WebhookConfig::from_env`]).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `WEBHOOK_ALLOWED_HOSTS`: host names, IP addresses and CIDRs (comma-separated) that
    /// the SSRF guard lets through although they are loopback/private/... (an operator's
    /// internal receivers; the tests' local receiver). Empty by default.
    pub allowed: AllowList,
    /// `WEBHOOK_TIMEOUT_MS` (default 10000): one attempt, connection to last byte.
    pub timeout: Duration,
    /// `WEBHOOK_RETRY_BASE_MS` (default 5000): delay after the first failure; doubles after
    /// each further failure, +-20 % jitter.
    pub retry_base: Duration,
    /// `WEBHOOK_RETRY_MAX_DELAY_MS` (default 6 h): cap of one delay.
    pub retry_max_delay: Duration,
    /// `WEBHOOK_RETRY_WINDOW_MS` (default 3 days): a delivery still failing this long after
    /// its first attempt is parked (`failed`; redeliver to try again).
    pub retry_window: Duration,
    /// `WEBHOOK_DISABLE_AFTER_MS` (default 5 days): a webhook failing without one success for
    /// this long is disabled (`webhook.disabled`); its pending deliveries wait for it.
    pub disable_after: Duration,
    /// `WEBHOOK_POLL_MS` (default 1000): how often the loop looks at tenants with due work.
    pub poll_interval: Duration,
    /// `WEBHOOK_SWEEP_MS` (default 30000): how often every active tenant is checked (work
    /// enqueued by another instance, or left by a stopped one).
    pub sweep_interval: Duration,
    /// Deliveries claimed per tenant and tick (sent concurrently).
    pub batch: i64,
    /// Tests: only these tenants are swept (other tests share the database). `None`: all.
    pub only_tenants: Option<Arc<Mutex<std::collections::HashSet<TenantId>>>>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allowed: AllowList::default(),
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(5),
            retry_max_delay: Duration::from_secs(6 * 3600),
            retry_window: Duration::from_secs(3 * 24 * 3600),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            poll_interval: Duration::from_secs(1),
            sweep_interval: Duration::from_secs(30),
            batch: 20,
            only_tenants: None,
        }
    }
}

impl WebhookConfig {
    pub fn from_env() -> Result<Self, SettingsError> {
        let d = Self::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let allowed = match settings::var("WEBHOOK_ALLOWED_HOSTS") {
            Some(raw) => AllowList::parse(&raw).map_err(|e| SettingsError::new("WEBHOOK_ALLOWED_HOSTS", e))?,
            None => AllowList::default(),
        };
        Ok(Self {
            allowed,
            timeout: settings::millis("WEBHOOK_TIMEOUT_MS", ms(d.timeout), 100)?,
            retry_base: settings::millis("WEBHOOK_RETRY_BASE_MS", ms(d.retry_base), 1)?,
            retry_max_delay: settings::millis("WEBHOOK_RETRY_MAX_DELAY_MS", ms(d.retry_max_delay), 1)?,
            retry_window: settings::millis("WEBHOOK_RETRY_WINDOW_MS", ms(d.retry_window), 1)?,
            disable_after: settings::millis("WEBHOOK_DISABLE_AFTER_MS", ms(d.disable_after), 1)?,
            poll_interval: settings::millis("WEBHOOK_POLL_MS", ms(d.poll_interval), 10)?,
            sweep_interval: settings::millis("WEBHOOK_SWEEP_MS", ms(d.sweep_interval), 100)?,
            ..d
        })
    }

    /// The delay before attempt `failures + 1` after `failures` failed attempts:
    /// `retry_base * 2^(failures-1)`, capped at `retry_max_delay`, +-20 % jitter (so
    /// receivers coming back are not hit by every sender at once).
    pub fn retry_delay(&self, failures: i32) -> Duration {
        let exp = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let base = self.retry_base.saturating_mul(2u32.saturating_pow(exp)).min(self.retry_max_delay);
        base.mul_f64(rand::rng().random_range(0.8..=1.2))
    }

    /// How long a claimed delivery is leased to its instance: the attempt's timeout plus a margin.
    pub fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }
}

/// `WEBHOOK_ALLOWED_HOSTS`: exceptions to the SSRF guard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Lower-case host names (exact match).
    pub hosts: Vec<String>,
    /// Addresses (as /32 or /128) and networks.
    pub nets: Vec<IpNet>,
}

impl AllowList {
    /// Comma-separated host names, IP addresses and CIDRs; blanks ignored.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut list = Self::default();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bare = item.trim_start_matches('[').trim_end_matches(']');
            if let Ok(net) = bare.parse::<IpNet>() {
                list.nets.push(net);
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else if item.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
                list.hosts.push(item.to_ascii_lowercase());
            } else {
                return Err(format!("{item:?} is not a host name, IP address or CIDR"));
            }
        }
        Ok(list)
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether a connection to `ip` (resolved from `host`) may be made.
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        is_public(ip) || self.allows_host(host) || self.allows_ip(ip)
    }
}

/// Whether `ip` is a global unicast address: not loopback, private (RFC 1918), shared
/// (100.64/10), link-local, unique-local (fc00::/7), multicast, unspecified, broadcast,
/// documentation, benchmarking or reserved; IPv4-mapped/-compatible and NAT64 IPv6
/// addresses are judged by their IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible ::a.b.c.d
            if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0]) || s[0..6] == [0, 0, 0, 0, 0, 0] {
                let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return !v6.is_unspecified() && !v6.is_loopback() && is_public_v4(v4);
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space (CGNAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 240) // reserved
}

/// The syntax of a target URL: `http`/`https`, a host, no credentials, at most [`MAX_URL`]
/// characters. The message names the problem (the caller names the field).
pub fn parse_target(raw: &str) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("is required".into());
    }
    if raw.chars().count() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} characters"));
    }
    let url = Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials (user:password@)".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    Ok(url)
}

/// The SSRF check of a parsed target: every address its host resolves to passes the guard
/// (or the allow-list names it). The message names the problem.
pub async fn check_addresses(allowed: &AllowList, url: &Url) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host.as_str(), port))).await {
            Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
            Ok(Err(_)) | Err(_) => return Err(format!("host {host:?} does not resolve")),
        },
    };
    if addrs.is_empty() {
        return Err(format!("host {host:?} does not resolve"));
    }
    if let Some(bad) = addrs.iter().find(|ip| !allowed.permits(&host, **ip)) {
        return Err(format!(
            "host {host:?} resolves to {bad}, a loopback, private, link-local or otherwise non-public address (refused unless the operator lists it in WEBHOOK_ALLOWED_HOSTS)"
        ));
    }
    Ok(())
}

/// Both checks: [`parse_target`] then [`check_addresses`].
pub async fn check_target(allowed: &AllowList, raw: &str) -> Result<Url, String> {
    let url = parse_target(raw)?;
    check_addresses(allowed, &url).await?;
    Ok(url)
}

/// The HTTP client's resolver: the system resolver, keeping only addresses the guard
/// permits, so a host re-pointed to an internal address after it was saved gets no
/// connection (DNS rebinding).
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allowed: Arc<AllowList>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found.iter().copied().filter(|a| allowed.permits(&host, a.ip())).collect();
            if kept.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = if found.is_empty() {
                    format!("host {host:?} does not resolve").into()
                } else {
                    format!("refused: host {host:?} resolves to a non-public address ({})", found[0].ip()).into()
                };
                return Err(error);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// The HMAC key of a secret (`None`: not a `whsec_<base64>` secret).
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    BASE64.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

/// One signature: `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub latency_ms: i32,
    /// `None`: a 2xx answer.
    pub error: Option<String>,
    pub excerpt: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// What one attempt sends.
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub message_id: &'a str,
    pub body: &'a str,
    /// HMAC keys: the current secret's, and a rotated-out one's during its grace period.
    pub keys: &'a [Vec<u8>],
}

/// The outbound HTTP side: one reqwest client (guarded resolver, no proxy, no redirects,
/// timeouts).
pub struct WebhookSender {
    client: reqwest::Client,
    allowed: Arc<AllowList>,
}

impl WebhookSender {
    pub fn new(config: &WebhookConfig) -> Self {
        let allowed = Arc::new(config.allowed.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("crm-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(GuardedResolver { allowed: allowed.clone() })
            .build()
            .unwrap_or_else(|e| panic!("webhook HTTP client: {e}"));
        Self { client, allowed }
    }

    /// Sends one signed attempt; never fails (a failure is an [`Attempt`] with an error).
    pub async fn send(&self, out: &Outgoing<'_>) -> Attempt {
        let at = Utc::now();
        let started = Instant::now();
        let (response_status, error, excerpt) = self.try_send(out, at.timestamp()).await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        Attempt { at, response_status, latency_ms, error, excerpt }
    }

    async fn try_send(&self, out: &Outgoing<'_>, timestamp: i64) -> (Option<i32>, Option<String>, Option<String>) {
        let url = match Url::parse(out.url) {
            Ok(url) => url,
            Err(e) => return (None, Some(format!("invalid URL: {e}")), None),
        };
        // The resolver is not asked for IP literals: check them here.
        if let Some(host) = url.host_str() {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>()
                && !self.allowed.permits(bare, ip)
            {
                return (None, Some(format!("refused: {ip} is not a public address")), None);
            }
        }
        let signature = out.keys.iter().map(|k| sign(k, out.message_id, timestamp, out.body)).collect::<Vec<_>>().join(" ");
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", out.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(out.body.to_owned());
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return (None, Some(describe(&e)), None),
        };
        let status = response.status();
        // Only a short excerpt is read; the rest of the body is dropped unread.
        let mut bytes = Vec::new();
        while bytes.len() < EXCERPT_CHARS * 4 {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        let text: String = String::from_utf8_lossy(&bytes).chars().take(EXCERPT_CHARS).collect();
        let excerpt = Some(text).filter(|t| !t.is_empty());
        let code = Some(i32::from(status.as_u16()));
        if status.is_success() {
            (code, None, excerpt)
        } else if status.is_redirection() {
            (code, Some(format!("HTTP {} (redirects are not followed)", status.as_u16())), excerpt)
        } else {
            (code, Some(format!("HTTP {}", status.as_u16())), excerpt)
        }
    }
}

/// A reqwest error as one line, with its cause (e.g. the guard's refusal).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text.chars().take(500).collect()
}

/// What delivering needs in the application state: the sender and this instance's hints.
pub struct WebhookRuntime {
    pub sender: WebhookSender,
    pub hints: DueHints,
}

impl WebhookRuntime {
    pub fn new(config: &WebhookConfig) -> Self {
        Self { sender: WebhookSender::new(config), hints: DueHints::default() }
    }
}

/// The tenants this instance knows to have due (or soon due) deliveries, with when.
#[derive(Debug, Default)]
pub struct DueHints(Mutex<HashMap<TenantId, Hint>>);

#[derive(Debug, Clone, Copy)]
struct Hint {
    next: DateTime<Utc>,
    /// Checked every tick until then even without a due row (a delivery enqueued in a
    /// transaction not yet committed).
    watch_until: Instant,
}

impl DueHints {
    /// Deliveries were (or are being) enqueued for `tenant`: look at it from now on.
    pub fn touch(&self, tenant: &TenantId) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(*tenant, Hint { next: Utc::now(), watch_until: Instant::now() + Duration::from_secs(5) });
    }

    fn due(&self, now: DateTime<Utc>) -> Vec<TenantId> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().filter(|(_, h)| h.next <= now).map(|(t, _)| *t).collect()
    }

    /// After a look at `tenant`: its next due time, if any.
    fn set(&self, tenant: &TenantId, next: Option<DateTime<Utc>>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let watching = map.get(tenant).filter(|h| h.watch_until > Instant::now()).map(|h| h.watch_until);
        match (next, watching) {
            (Some(next), _) => {
                map.insert(*tenant, Hint { next, watch_until: watching.unwrap_or_else(Instant::now) });
            }
            (None, Some(watch_until)) => {
                map.insert(*tenant, Hint { next: Utc::now(), watch_until });
            }
            (None, None) => {
                map.remove(tenant);
            }
        }
    }
}

/// The delivery loop of one instance, until `shutdown`: every `poll_interval`, the tenants
/// with due work deliver it; every `sweep_interval`, all active tenants are checked.
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) {
    let config = state.settings.webhooks.clone();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_sweep: Option<Instant> = None;
    loop {
        if last_sweep.is_none_or(|t| t.elapsed() >= config.sweep_interval) {
            last_sweep = Some(Instant::now());
            if let Err(e) = sweep(&state, &config).await {
                tracing::warn!(error = %e, "webhook sweep failed; retrying at the next sweep");
            }
        }
        for tenant in state.webhook_runtime.hints.due(Utc::now()) {
            match crate::service::webhooks::deliver_due(&state, &tenant).await {
                Ok(next) => state.webhook_runtime.hints.set(&tenant, next),
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "webhook deliveries failed; retrying");
                    let retry = Utc::now() + chrono::Duration::from_std(config.poll_interval * 5).unwrap_or_default();
                    state.webhook_runtime.hints.set(&tenant, Some(retry));
                }
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(config.poll_interval) => {}
        }
    }
}

/// Every active tenant (or the test's): its next due delivery, into the hints.
async fn sweep(state: &AppState, config: &WebhookConfig) -> Result<(), crm_web::ApiError> {
    let tenants: Vec<TenantId> = match &config.only_tenants {
        Some(only) => only.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect(),
        None => crate::service::webhooks::active_tenants(state).await?,
    };
    for tenant in tenants {
        match crate::service::webhooks::next_due(state, &tenant).await {
            Ok(Some(next)) => state.webhook_runtime.hints.set(&tenant, Some(next)),
            Ok(None) => {}
            Err(e) => tracing::debug!(tenant = %tenant, error = %e, "webhook sweep skipped a tenant"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_refuses_non_public_addresses() {
        for ip in [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1",
            "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_allow_list_takes_hosts_ips_and_cidrs() {
        let list = AllowList::parse(" hooks.internal , 127.0.0.1, 10.0.0.0/8, [::1] ,").unwrap();
        assert!(list.permits("hooks.internal", "192.168.0.5".parse().unwrap()));
        assert!(list.permits("x", "127.0.0.1".parse().unwrap()));
        assert!(list.permits("x", "10.9.9.9".parse().unwrap()));
        assert!(list.permits("x", "::1".parse().unwrap()));
        assert!(!list.permits("x", "127.0.0.2".parse().unwrap()));
        assert!(!list.permits("x", "192.168.0.5".parse().unwrap()));
        assert!(AllowList::parse("bad host!").is_err());
        assert_eq!(AllowList::parse("").unwrap(), AllowList::default());
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference tests.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(new_secret().starts_with(SECRET_PREFIX));
        assert_eq!(secret_key(&new_secret()).unwrap().len(), 32);
        assert!(secret_key("nope").is_none());
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_a_cap() {
        let config = WebhookConfig { retry_base: Duration::from_secs(10), retry_max_delay: Duration::from_secs(100), ..Default::default() };
        let secs = |n| config.retry_delay(n).as_secs_f64();
        assert!((8.0..=12.0).contains(&secs(1)), "{}", secs(1));
        assert!((16.0..=24.0).contains(&secs(2)));
        assert!((32.0..=48.0).contains(&secs(3)));
        assert!((80.0..=120.0).contains(&secs(20)));
    }

    #[tokio::test]
    async fn targets_are_checked_before_saving() {
        let none = AllowList::default();
        for url in ["http://127.0.0.1/x", "http://10.0.0.1/", "http://169.254.169.254/latest", "http://[::1]:8080/", "http://localhost/"] {
            let err = check_target(&none, url).await.unwrap_err();
            assert!(err.contains("non-public"), "{url}: {err}");
        }
        assert!(check_target(&none, "ftp://example.com/").await.unwrap_err().contains("http"));
        assert!(check_target(&none, "http://user:pw@93.184.216.34/").await.unwrap_err().contains("credentials"));
        assert!(check_target(&none, "not a url").await.is_err());
        assert!(check_target(&none, "https://93.184.216.34/hook").await.is_ok());
        let local = AllowList::parse("127.0.0.1").unwrap();
        assert!(check_target(&local, "http://127.0.0.1:9/x").await.is_ok());
    }
}
