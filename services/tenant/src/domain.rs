//! Input rules of tenant-service: parse, don't validate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_web::FieldErrors;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Subdomains that belong to the platform itself.
const RESERVED_SUBDOMAINS: &[&str] = &[
    "www", "api", "admin", "app", "apps", "auth", "login", "signup", "register", "account", "accounts", "mail",
    "email", "smtp", "imap", "pop", "ftp", "static", "assets", "cdn", "media", "img", "status", "docs", "help",
    "support", "billing", "dashboard", "platform", "system", "root", "internal", "dev", "staging", "test", "demo-admin",
    "ns1", "ns2", "dns", "blog", "crm", "metrics", "health", "ready", "grafana", "prometheus", "nats", "postgres",
];

pub fn check_subdomain(errors: &mut FieldErrors, raw: &str) -> String {
    let subdomain = raw.trim().to_ascii_lowercase();
    let message = if !(3..=63).contains(&subdomain.len()) {
        Some("must be 3 to 63 characters")
    } else if !subdomain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        Some("may contain only letters, digits and '-'")
    } else if subdomain.starts_with('-') || subdomain.ends_with('-') {
        Some("must not start or end with '-'")
    } else if RESERVED_SUBDOMAINS.contains(&subdomain.as_str()) {
        Some("is reserved")
    } else {
        None
    };
    if let Some(message) = message {
        errors.add("subdomain", message);
    }
    subdomain
}

/// A new invitation token (256 random bits, URL-safe) and the hash stored for it.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// Tokens are stored only as SHA-256: a leaked table does not leak usable invitations.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subdomain_ok(s: &str) -> bool {
        let mut e = FieldErrors::new();
        check_subdomain(&mut e, s);
        e.is_empty()
    }

    #[test]
    fn subdomain_rules() {
        for ok in ["acme", "acme-corp", "a1b", "ACME", &"a".repeat(63)] {
            assert!(subdomain_ok(ok), "{ok}");
        }
        for bad in ["ab", "-acme", "acme-", "ac me", "acme.corp", "www", "API", "ünï", &"a".repeat(64), "a_b", ""] {
            assert!(!subdomain_ok(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token(&a), ha);
        assert_eq!(ha.len(), 64);
    }
}
