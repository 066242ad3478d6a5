//! What every typed client in `pkg/clients/` shares: one reqwest client with timeouts,
//! forwarding of the caller's bearer token and `X-Request-ID`, errors decoded from the
//! platform's error shape into [`ClientError`], and a small circuit breaker so a dead
//! dependency costs a fast failure instead of a timeout per request. [`names`]: the
//! per-tenant name caches the typed clients' cached decorators share.

pub mod names;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Who a call is made for: forwarded so the callee authorizes and logs it as the caller.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Access token of the user (or a short-lived service token).
    pub bearer: Option<String>,
    pub request_id: Option<String>,
    /// The tenant the bearer belongs to (its verified `tenant_id` claim), set by
    /// `crm_web::Caller`. Keys the [`names`] caches; a call without it is never cached.
    pub tenant: Option<String>,
}

impl CallContext {
    pub fn new(bearer: impl Into<String>) -> Self {
        Self { bearer: Some(bearer.into()), request_id: None, tenant: None }
    }

    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The tenant of the bearer (see [`CallContext::tenant`]).
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("not found")]
    NotFound,
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The callee refused the input (4xx other than the above), with its stable code.
    #[error("{status} {code}: {message}")]
    Invalid { status: u16, code: String, message: String },
    /// Down, timed out, 5xx, or the circuit is open.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

/// The platform's error body, as far as a client needs it.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
    code: String,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Consecutive failures that open the circuit, and how long it stays open.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_millis(500),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(5),
        }
    }
}

/// The HTTP side of a typed client.
pub struct HttpClient {
    config: ClientConfig,
    http: reqwest::Client,
    breaker: Mutex<Breaker>,
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

impl HttpClient {
    pub fn new(config: ClientConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(32)
            .build()
            .unwrap_or_default();
        Self { config, http, breaker: Mutex::new(Breaker::default()) }
    }

    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// `GET base_url + path` decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, ctx: &CallContext, path: &str) -> Result<T, ClientError> {
        self.send(ctx, self.request(Method::GET, path)).await
    }

    pub async fn post<B: serde::Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(ctx, self.request(Method::POST, path).json(body)).await
    }

    /// `PATCH path` with a JSON body (only the fields present change).
    pub async fn patch<B: serde::Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(ctx, self.request(Method::PATCH, path).json(body)).await
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.config.base_url, path))
    }

    pub async fn send<T: DeserializeOwned>(&self, ctx: &CallContext, mut req: RequestBuilder) -> Result<T, ClientError> {
        self.check_breaker()?;
        if let Some(token) = &ctx.bearer {
            if let Some(proof) = internal_proof(token) {
                req = req.header(X_INTERNAL_PROOF, proof);
            }
            req = req.bearer_auth(token);
        }
        if let Some(id) = &ctx.request_id {
            req = req.header("X-Request-ID", id);
        }
        let outcome = match req.send().await {
            Err(e) => Err(ClientError::Unavailable(e.without_url().to_string())),
            Ok(resp) => decode(resp).await,
        };
        self.record(&outcome);
        outcome
    }

    fn check_breaker(&self) -> Result<(), ClientError> {
        let breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match breaker.open_until {
            Some(until) if Instant::now() < until => {
                Err(ClientError::Unavailable(format!("circuit open for {}", self.config.base_url)))
            }
            _ => Ok(()),
        }
    }

    fn record<T>(&self, outcome: &Result<T, ClientError>) {
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(outcome, Err(ClientError::Unavailable(_))) {
            breaker.failures += 1;
            if breaker.failures >= self.config.breaker_threshold {
                tracing::warn!(service = %self.config.base_url, "dependency failing: circuit opened");
                breaker.open_until = Some(Instant::now() + self.config.breaker_cooldown);
                breaker.failures = 0;
            }
        } else {
            breaker.failures = 0;
            breaker.open_until = None;
        }
    }
}

async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return resp.json::<T>().await.map_err(|e| ClientError::Unavailable(format!("undecodable response: {e}")));
    }
    let body = resp.json::<ErrorBody>().await.ok();
    let message = body.as_ref().map(|b| b.error.clone()).unwrap_or_else(|| status.to_string());
    Err(match status {
        StatusCode::NOT_FOUND => ClientError::NotFound,
        StatusCode::UNAUTHORIZED => ClientError::Unauthorized(message),
        StatusCode::FORBIDDEN => ClientError::Forbidden(message),
        s if s.is_client_error() => ClientError::Invalid {
            status: s.as_u16(),
            code: body.map(|b| b.code).unwrap_or_default(),
            message,
        },
        _ => ClientError::Unavailable(message),
    })
}

/// Header a service adds to its calls to another service of the same installation: proof,
/// without a second secret to manage, that the request is a sub-request made for the
/// bearer's own request (enrichment, batch lookups) rather than a request of the user. The
/// API rate limit (`crm_web::rate_limit`) counts a user's requests once, where they enter,
/// and lets these through: counting them again at the callee would turn one allowed request
/// into a refused enrichment (a silently missing name).
pub const X_INTERNAL_PROOF: &str = "x-crm-internal";

static INTERNAL_KEY: OnceLock<InternalKey> = OnceLock::new();

/// The key of [`X_INTERNAL_PROOF`]: HMAC-SHA256 of a fixed label under the installation's
/// JWT secret (every service has it), so it is never the JWT key itself.
#[derive(Clone)]
pub struct InternalKey(Hmac<Sha256>);

impl InternalKey {
    pub fn derive(jwt_secret: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(jwt_secret).expect("HMAC takes keys of any length");
        mac.update(b"crm internal call proof v1");
        let key = mac.finalize().into_bytes();
        Self(<Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes keys of any length"))
    }

    /// `base64url(HMAC-SHA256(key, bearer token))`, no padding.
    pub fn proof(&self, bearer: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(bearer.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `proof` is [`Self::proof`] of `bearer` (constant-time comparison).
    pub fn verifies(&self, bearer: &str, proof: &str) -> bool {
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(proof) else { return false };
        let mut mac = self.0.clone();
        mac.update(bearer.as_bytes());
        mac.verify_slice(&tag).is_ok()
    }
}

/// Installs the process's internal-call key (once, at start-up: `crm_runtime::Platform::start`).
/// Until it is set, clients send no [`X_INTERNAL_PROOF`] (tests that build services by hand).
pub fn set_internal_key(key: InternalKey) {
    let _ = INTERNAL_KEY.set(key);
}

fn internal_proof(bearer: &str) -> Option<String> {
    INTERNAL_KEY.get().map(|key| key.proof(bearer))
}

/// `ids=1,2,3` for batch lookups.
pub fn ids_query<I: std::fmt::Display>(ids: &[I]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_proof_verifies_only_for_its_token_and_key() {
        let key = InternalKey::derive(b"a-jwt-secret-of-at-least-32-characters!!");
        let proof = key.proof("token-a");
        assert!(key.verifies("token-a", &proof));
        assert!(!key.verifies("token-b", &proof));
        assert!(!key.verifies("token-a", "not base64 !"));
        let other = InternalKey::derive(b"another-jwt-secret-of-at-least-32-chars!");
        assert!(!other.verifies("token-a", &proof));
    }

    #[tokio::test]
    async fn an_unreachable_service_opens_the_circuit() {
        // Port 9 on loopback: nothing listens, connections are refused at once.
        let client = HttpClient::new(ClientConfig { breaker_threshold: 2, ..ClientConfig::new("http://127.0.0.1:9") });
        let ctx = CallContext::default();
        for _ in 0..2 {
            let err = client.get::<serde_json::Value>(&ctx, "/x").await.unwrap_err();
            assert!(matches!(err, ClientError::Unavailable(_)), "{err}");
        }
        let err = client.get::<serde_json::Value>(&ctx, "/x").await.unwrap_err();
        assert!(err.to_string().contains("circuit open"), "{err}");
    }

    #[test]
    fn ids_are_comma_separated() {
        assert_eq!(ids_query(&[1, 2, 3]), "1,2,3");
    }
}
