//! Which tenant a request is for.
//!
//! Authenticated calls: the verified token's `tenant_id` claim, full stop; an `X-Tenant-ID`
//! header is accepted only when it names the same tenant ([`check_tenant_header`]).
//! Login and registration: the `Host` subdomain ([`subdomain_from_host`]) or an explicit
//! tenant field.

use crate::TenantId;

/// `acme.crm.example.com:443` with base `crm.example.com` -> `acme`. Exactly one label in
/// front of the base domain; anything else (the bare base, nested labels, other domains,
/// an IP) yields `None`.
pub fn subdomain_from_host(host: &str, base_domain: &str) -> Option<String> {
    let host = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
    let base = base_domain.trim_matches('.').to_ascii_lowercase();
    if base.is_empty() {
        return None;
    }
    let label = host.strip_suffix(&base)?.strip_suffix('.')?;
    let valid = !label.is_empty()
        && !label.contains('.')
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| label.to_owned())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host; // IPv6 literal: never a tenant subdomain
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("X-Tenant-ID does not match the tenant of the token")]
pub struct TenantHeaderMismatch;

/// An `X-Tenant-ID` header, when present, must name the token's own tenant.
pub fn check_tenant_header(header: Option<&str>, token_tenant: &TenantId) -> Result<(), TenantHeaderMismatch> {
    match header.map(str::trim) {
        None | Some("") => Ok(()),
        Some(value) => match TenantId::parse(value) {
            Ok(id) if id == *token_tenant => Ok(()),
            _ => Err(TenantHeaderMismatch),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains() {
        let base = "crm.example.com";
        assert_eq!(subdomain_from_host("acme.crm.example.com", base).as_deref(), Some("acme"));
        assert_eq!(subdomain_from_host("ACME.crm.example.com:8443", base).as_deref(), Some("acme"));
        assert_eq!(subdomain_from_host("acme.crm.example.com.", base).as_deref(), Some("acme"));
        assert_eq!(subdomain_from_host("crm.example.com", base), None);
        assert_eq!(subdomain_from_host("a.b.crm.example.com", base), None);
        assert_eq!(subdomain_from_host("acme.evil.com", base), None);
        assert_eq!(subdomain_from_host("acmecrm.example.com", base), None);
        assert_eq!(subdomain_from_host("[::1]:8000", base), None);
        assert_eq!(subdomain_from_host("acme.localhost:8000", "localhost").as_deref(), Some("acme"));
    }

    #[test]
    fn tenant_header_must_match_the_token() {
        let a = TenantId::new();
        let b = TenantId::new();
        assert_eq!(check_tenant_header(None, &a), Ok(()));
        assert_eq!(check_tenant_header(Some(&a.to_string()), &a), Ok(()));
        assert_eq!(check_tenant_header(Some(&a.to_string().to_lowercase()), &a), Ok(()));
        assert_eq!(check_tenant_header(Some(&b.to_string()), &a), Err(TenantHeaderMismatch));
        assert_eq!(check_tenant_header(Some("garbage"), &a), Err(TenantHeaderMismatch));
    }
}
