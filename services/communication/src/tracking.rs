//! Open and click tracking: signed tokens naming (tenant, email), and signed click links so
//! `/t/c/{token}` redirects only to URLs that were in the email (no open redirect).
//!
//! * token = base64url(tenant ULID (16 bytes) | email id (4 bytes) | HMAC tag (12 bytes))
//! * click link = `/t/c/{token}?u=<url>&s=base64url(HMAC("click" | token | url)[..16])`
//!
//! The key is derived from `JWT_SECRET`, so there is no extra secret to manage.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_tenant::TenantId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::render::{html_escape, html_unescape};

const TOKEN_TAG: usize = 12;
const LINK_TAG: usize = 16;

/// Signs and verifies tracking tokens and click links.
#[derive(Clone)]
pub struct Tracker {
    mac: Hmac<Sha256>,
    /// Public base URL of this API (`PUBLIC_BASE_URL`), without a trailing slash.
    base_url: String,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl Tracker {
    pub fn new(secret: &[u8], base_url: &str) -> Self {
        let mut key = b"email-tracking-key:".to_vec();
        key.extend_from_slice(secret);
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        Self { mac, base_url: base_url.trim_end_matches('/').to_owned() }
    }

    fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    pub fn token(&self, tenant: &TenantId, email_id: i32) -> String {
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(&tenant.ulid().0.to_be_bytes());
        bytes.extend_from_slice(&email_id.to_be_bytes());
        let tag = self.tag(&[b"open", &bytes]);
        bytes.extend_from_slice(&tag[..TOKEN_TAG]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The token of an email's one-click unsubscribe link (RFC 8058): tenant and email id
    /// with an HMAC tag of its own purpose, so an open/click token is not an unsubscribe
    /// token (and the other way round).
    pub fn unsubscribe_token(&self, tenant: &TenantId, email_id: i32) -> String {
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(&tenant.ulid().0.to_be_bytes());
        bytes.extend_from_slice(&email_id.to_be_bytes());
        let tag = self.tag(&[b"unsubscribe", &bytes]);
        bytes.extend_from_slice(&tag[..TOKEN_TAG]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The (tenant, email id) of a genuine unsubscribe token; `None` for anything else.
    pub fn verify_unsubscribe_token(&self, token: &str) -> Option<(TenantId, i32)> {
        if token.len() > 64 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != 20 + TOKEN_TAG {
            return None;
        }
        let (body, tag) = bytes.split_at(20);
        let mut mac = self.mac.clone();
        for part in [b"unsubscribe".as_slice(), body] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.verify_truncated_left(tag).ok()?;
        let ulid = u128::from_be_bytes(body[..16].try_into().ok()?);
        let tenant = TenantId::parse(&ulid::Ulid(ulid).to_string()).ok()?;
        let email_id = i32::from_be_bytes(body[16..20].try_into().ok()?);
        Some((tenant, email_id))
    }

    /// Where an email's unsubscribe link points (`GET` shows a confirmation page, `POST`
    /// unsubscribes: RFC 8058 one-click).
    pub fn unsubscribe_url(&self, token: &str) -> String {
        format!("{}/api/v1/unsubscribe/{token}", self.base_url)
    }

    /// The (tenant, email id) of a genuine token; `None` for anything else.
    pub fn verify_token(&self, token: &str) -> Option<(TenantId, i32)> {
        if token.len() > 64 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != 20 + TOKEN_TAG {
            return None;
        }
        let (body, tag) = bytes.split_at(20);
        let mut mac = self.mac.clone();
        mac.update(&4u32.to_be_bytes());
        mac.update(b"open");
        mac.update(&20u32.to_be_bytes());
        mac.update(body);
        mac.verify_truncated_left(tag).ok()?;
        let ulid = u128::from_be_bytes(body[..16].try_into().ok()?);
        let tenant = TenantId::parse(&ulid::Ulid(ulid).to_string()).ok()?;
        let email_id = i32::from_be_bytes(body[16..20].try_into().ok()?);
        Some((tenant, email_id))
    }

    fn link_signature(&self, token: &str, url: &str) -> String {
        URL_SAFE_NO_PAD.encode(&self.tag(&[b"click", token.as_bytes(), url.as_bytes()])[..LINK_TAG])
    }

    /// Whether `signature` was made by [`Self::click_url`] for this token and URL.
    pub fn verify_link(&self, token: &str, url: &str, signature: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else { return false };
        if given.len() != LINK_TAG {
            return false;
        }
        let mut mac = self.mac.clone();
        for part in [b"click".as_slice(), token.as_bytes(), url.as_bytes()] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.verify_truncated_left(&given).is_ok()
    }

    pub fn pixel_url(&self, token: &str) -> String {
        format!("{}/api/v1/t/o/{token}.gif", self.base_url)
    }

    pub fn click_url(&self, token: &str, url: &str) -> String {
        format!("{}/api/v1/t/c/{token}?u={}&s={}", self.base_url, percent_encode(url), self.link_signature(token, url))
    }

    /// The HTML body as sent: every `http(s)` link goes through the click endpoint and an
    /// open pixel is added at the end of the body.
    pub fn instrument_html(&self, html: &str, token: &str) -> String {
        let rewritten = rewrite_links(html, |url| self.click_url(token, url));
        let pixel = format!(r#"<img src="{}" width="1" height="1" alt="" style="display:none">"#, self.pixel_url(token));
        match rewritten.to_ascii_lowercase().rfind("</body>") {
            Some(at) => format!("{}{pixel}{}", &rewritten[..at], &rewritten[at..]),
            None => format!("{rewritten}{pixel}"),
        }
    }
}

/// Replaces the value of every `href` whose (unescaped) URL is absolute http(s) with
/// `replace(url)` (escaped back for the attribute).
fn rewrite_links(html: &str, replace: impl Fn(&str) -> String) -> String {
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() + 256);
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("href") {
        let mut i = search + found + 4;
        search = i;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&quote) = bytes.get(i).filter(|q| **q == b'"' || **q == b'\'') else { continue };
        let start = i + 1;
        let Some(len) = html[start..].find(quote as char) else { break };
        let end = start + len;
        let url = html_unescape(&html[start..end]);
        let lower_url = url.to_ascii_lowercase();
        if lower_url.starts_with("http://") || lower_url.starts_with("https://") {
            out.push_str(&html[copied..start]);
            out.push_str(&html_escape(&replace(&url)));
            copied = end;
        }
        search = end;
    }
    out.push_str(&html[copied..]);
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> Tracker {
        Tracker::new(b"secret", "https://crm.example.com/")
    }

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let t = tracker();
        let tenant = TenantId::new();
        let token = t.token(&tenant, 42);
        assert_eq!(t.verify_token(&token), Some((tenant, 42)));
        let mut forged = URL_SAFE_NO_PAD.decode(&token).unwrap();
        forged[19] ^= 1; // email id 42 -> 43
        assert_eq!(t.verify_token(&URL_SAFE_NO_PAD.encode(&forged)), None);
        assert_eq!(Tracker::new(b"other", "x").verify_token(&token), None);
        for bad in ["", "abc", "!!!!", &"A".repeat(100)] {
            assert_eq!(t.verify_token(bad), None);
        }
    }

    #[test]
    fn click_links_are_bound_to_token_and_url() {
        let t = tracker();
        let token = t.token(&TenantId::new(), 1);
        let sig = t.link_signature(&token, "https://example.com/a?b=1&c=2");
        assert!(t.verify_link(&token, "https://example.com/a?b=1&c=2", &sig));
        assert!(!t.verify_link(&token, "https://evil.example/a?b=1&c=2", &sig));
        assert!(!t.verify_link(&t.token(&TenantId::new(), 1), "https://example.com/a?b=1&c=2", &sig));
        assert!(!t.verify_link(&token, "https://example.com/a?b=1&c=2", "garbage"));
    }

    #[test]
    fn html_links_are_rewritten_and_a_pixel_added() {
        let t = tracker();
        let html = r#"<html><body><a href="https://example.com/?a=1&amp;b=2">x</a> <a HREF='mailto:x@y'>m</a> <a href = "http://e.com">e</a></body></html>"#;
        let out = t.instrument_html(html, "TOK");
        assert!(out.contains(r#"href="https://crm.example.com/api/v1/t/c/TOK?u=https%3A%2F%2Fexample.com%2F%3Fa%3D1%26b%3D2&amp;s="#), "{out}");
        assert!(out.contains("HREF='mailto:x@y'"), "{out}");
        assert!(out.contains("u=http%3A%2F%2Fe.com"), "{out}");
        assert!(out.ends_with(r#"<img src="https://crm.example.com/api/v1/t/o/TOK.gif" width="1" height="1" alt="" style="display:none"></body></html>"#), "{out}");
        assert_eq!(t.instrument_html("plain", "T"), format!("plain<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:none\">", t.pixel_url("T")));
    }
}

