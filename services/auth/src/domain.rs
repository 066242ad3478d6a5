//! Input rules of auth-service: parse, don't validate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_client_auth::{UserBasicInfo, UserDetails};
use crm_tenant::TenantId;
use crm_web::FieldErrors;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 128;
pub const MAX_NAME: usize = 100;

/// 8 to 128 characters. The value is never echoed in messages.
pub fn check_password(errors: &mut FieldErrors, field: &str, password: &str) {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        errors.add(field, format!("must be at least {MIN_PASSWORD} characters"));
    } else if n > MAX_PASSWORD {
        errors.add(field, format!("must be at most {MAX_PASSWORD} characters"));
    }
}

/// Statuses an admin can set.
pub fn check_status(errors: &mut FieldErrors, raw: &str) -> Option<String> {
    if matches!(raw, "active" | "inactive") {
        Some(raw.to_owned())
    } else {
        errors.add("status", "must be active or inactive");
        None
    }
}

/// `%` and `_` of a search term matched literally (LIKE's default escape is `\`).
pub fn like_pattern(term: &str) -> String {
    let mut escaped = String::with_capacity(term.len() + 2);
    escaped.push('%');
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

/// SHA-256 hex: how refresh and reset tokens are stored.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A password reset token: `<tenant id>.<256 random bits, base64url>`. The tenant part lets
/// the confirmation find the tenant schema; the random part is the secret. Returns the token
/// and the hash stored for it.
pub fn new_reset_token(tenant: &TenantId) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{tenant}.{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

/// The tenant named by a reset token, if it has the right shape.
pub fn reset_token_tenant(token: &str) -> Option<TenantId> {
    let (tenant, secret) = token.split_once('.')?;
    (secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| TenantId::parse(tenant).ok())
        .flatten()
}

/// Who a user is, as events and lookups tell it.
pub fn basic(user: &UserDetails) -> UserBasicInfo {
    UserBasicInfo {
        id: user.id,
        email: user.email.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        role: user.role.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_names() {
        let mut e = FieldErrors::new();
        check_password(&mut e, "password", "12345678");
        check_password(&mut e, "p2", &"é".repeat(128));
        assert!(e.is_empty());
        for bad in ["", "1234567", &"a".repeat(129)] {
            let mut e = FieldErrors::new();
            check_password(&mut e, "password", bad);
            assert!(!e.is_empty());
        }
    }

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_pattern("A%b_c\\"), "%a\\%b\\_c\\\\%");
    }

    #[test]
    fn reset_tokens_carry_their_tenant() {
        let tenant = TenantId::new();
        let (token, hash) = new_reset_token(&tenant);
        assert_eq!(reset_token_tenant(&token), Some(tenant));
        assert_eq!(hash, hash_token(&token));
        assert_ne!(new_reset_token(&tenant).0, token);
        for bad in ["", "abc", &format!("{tenant}."), &format!("{tenant}.short"), "x.yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"] {
            assert_eq!(reset_token_tenant(bad), None, "{bad}");
        }
    }
}
