//! Password hashing: bcrypt, off the async runtime, with bounded concurrency.
//!
//! * Scheme: `bcrypt(base64(sha256(password)))`. bcrypt reads only 72 bytes; passwords may be
//!   128 characters (up to 512 bytes of UTF-8), so they are first reduced to a fixed 44-byte
//!   string. No byte of a long password is ignored and no NUL byte reaches bcrypt.
//! * Every hash and verify runs in `spawn_blocking`, at most `concurrency` at a time (by
//!   default one less than the cores): a burst of logins queues here instead of taking every
//!   core from the requests that need no hashing.
//! * Unknown emails are verified against a dummy hash of the same cost, so the response time
//!   does not tell whether an account exists.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crm_web::ApiError;
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, Semaphore};

/// Longest a request waits for a hashing slot before it gets 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PasswordHasher {
    cost: u32,
    slots: Arc<Semaphore>,
    concurrency: usize,
    dummy: OnceCell<String>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("cost", &self.cost).field("concurrency", &self.concurrency).finish()
    }
}

fn prehash(password: &str) -> String {
    STANDARD.encode(Sha256::digest(password.as_bytes()))
}

impl PasswordHasher {
    pub fn new(cost: u32, concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self { cost, slots: Arc::new(Semaphore::new(concurrency)), concurrency, dummy: OnceCell::new() }
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Runs `work` on the blocking pool once a slot is free.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| {
                tracing::warn!("password hashing queue full");
                ApiError::unavailable("too many logins in progress, retry shortly")
            })?
            .map_err(ApiError::internal)?;
        let result = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(ApiError::internal)?;
        Ok(result)
    }

    /// A bcrypt hash of `password` at the configured cost.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let input = prehash(password);
        let cost = self.cost;
        self.run(move || bcrypt::hash(input, cost)).await?.map_err(ApiError::internal)
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it spends the same time
    /// on a dummy hash and answers `false`.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let (stored, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash().await?.to_owned(), false),
        };
        let input = prehash(password);
        // A malformed stored hash is a failed login, not a 500 that would tell it apart.
        let matches = self.run(move || bcrypt::verify(input, &stored).unwrap_or(false)).await?;
        Ok(real && matches)
    }

    async fn dummy_hash(&self) -> Result<&str, ApiError> {
        self.dummy
            .get_or_try_init(|| async {
                let random = ulid::Ulid::generate().to_string();
                self.hash(&random).await
            })
            .await
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_long_passwords_count_whole() {
        let hasher = PasswordHasher::new(4, 2);
        let long = format!("{}A", "x".repeat(100));
        let h = hasher.hash(&long).await.unwrap();
        assert!(h.starts_with("$2b$04$"));
        assert!(hasher.verify(&long, Some(&h)).await.unwrap());
        // Differs only after byte 72: plain bcrypt would accept it.
        assert!(!hasher.verify(&format!("{}B", "x".repeat(100)), Some(&h)).await.unwrap());
        assert!(!hasher.verify(&long, None).await.unwrap());
        assert!(!hasher.verify(&long, Some("not a bcrypt hash")).await.unwrap());
    }
}
