//! Identifier rules shared by the migration runner and `crm_tenant::SchemaName`.

/// Prefix of every tenant schema: `tenant_<ulid lowercased>`.
pub const TENANT_SCHEMA_PREFIX: &str = "tenant_";
/// The schema of the global registry (tenants, invitations, migration registry).
pub const PLATFORM_SCHEMA: &str = "platform";

/// True for `tenant_` followed by exactly 26 lowercase Crockford base32 characters.
pub fn is_tenant_schema(name: &str) -> bool {
    match name.strip_prefix(TENANT_SCHEMA_PREFIX) {
        Some(ulid) => {
            ulid.len() == 26
                && ulid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'h' | b'j' | b'k' | b'm' | b'n' | b'p'..=b't' | b'v'..=b'z'))
                // a ULID's first character encodes the top 3 bits of 128: 0..=7
                && matches!(ulid.as_bytes()[0], b'0'..=b'7')
        }
        None => false,
    }
}

/// Quotes an identifier for SQL (`"name"`, inner quotes doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_derived_pattern() {
        assert!(is_tenant_schema("tenant_01hzx3v5k8q9r2s4t6w8y0a1b2"));
        assert!(!is_tenant_schema("tenant_01HZX3V5K8Q9R2S4T6W8Y0A1B2"));
        assert!(!is_tenant_schema("tenant_01hzx3v5k8q9r2s4t6w8y0a1b"));
        assert!(!is_tenant_schema("tenant_01hzx3v5k8q9r2s4t6w8y0a1bi"));
        assert!(!is_tenant_schema("tenant_81hzx3v5k8q9r2s4t6w8y0a1b2"));
        assert!(!is_tenant_schema("public"));
        assert!(!is_tenant_schema("tenant_x\"; drop schema platform; --"));
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
