//! Reading settings from the environment, once, at start: every reader names the variable
//! and the rule it broke, so a bad deployment fails with a message that says what to fix.
//! Each service has one `Settings` struct built with these; a process (a service binary or
//! `crm serve`) reads all of its settings before it starts anything.

use std::str::FromStr;
use std::time::Duration;

/// A setting that is missing or breaks its rule: `JWT_SECRET: at least 32 characters`.
/// The offending value is never printed (it may be a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {rule}")]
pub struct SettingsError {
    pub var: &'static str,
    pub rule: String,
}

impl SettingsError {
    pub fn new(var: &'static str, rule: impl Into<String>) -> Self {
        Self { var, rule: rule.into() }
    }
}

/// The variable's value, `None` when unset or empty.
pub fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A string with a default.
pub fn string(name: &'static str, default: &str) -> String {
    var(name).unwrap_or_else(|| default.to_owned())
}

/// An `http://` or `https://` URL with a default (trailing `/` removed).
pub fn url(name: &'static str, default: &str) -> Result<String, SettingsError> {
    let value = string(name, default);
    if !(value.starts_with("http://") || value.starts_with("https://")) || value.len() <= "http://".len() {
        return Err(SettingsError::new(name, "must be an http:// or https:// URL"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// A number (any `FromStr` type) with a default.
pub fn number<T: FromStr>(name: &'static str, default: T, rule: &str) -> Result<T, SettingsError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| SettingsError::new(name, rule.to_owned())),
    }
}

/// A duration given in milliseconds, with a default; at least `min_ms`.
pub fn millis(name: &'static str, default_ms: u64, min_ms: u64) -> Result<Duration, SettingsError> {
    let ms: u64 = number(name, default_ms, &format!("must be a whole number of milliseconds, at least {min_ms}"))?;
    if ms < min_ms {
        return Err(SettingsError::new(name, format!("must be a whole number of milliseconds, at least {min_ms}")));
    }
    Ok(Duration::from_millis(ms))
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`), with a default.
pub fn flag(name: &'static str, default: bool) -> Result<bool, SettingsError> {
    match var(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(_) => Err(SettingsError::new(name, "must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable_and_the_rule() {
        let e = SettingsError::new("ENRICHMENT_TIMEOUT_MS", "must be a whole number of milliseconds, at least 1");
        assert_eq!(e.to_string(), "ENRICHMENT_TIMEOUT_MS: must be a whole number of milliseconds, at least 1");
        assert_eq!(number::<u16>("CRM_TEST_UNSET_SETTING", 7, "a port").unwrap(), 7);
        assert_eq!(url("CRM_TEST_UNSET_SETTING", "http://x:1/").unwrap(), "http://x:1");
        assert!(url("CRM_TEST_UNSET_SETTING", "ftp://x").is_err());
    }
}
