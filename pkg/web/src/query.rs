//! The query string as ordered pairs, parsed by hand into [`FieldErrors`]: repeatable
//! parameters work (`?tag=a&tag=b`) and a request with several bad parameters gets one 400
//! naming all of them (a typed `Query<T>` stops at the first).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::FieldErrors;

/// Extract with `AppQuery<QueryParams>`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(transparent)]
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    /// The last value given for `key`; blank counts as absent.
    pub fn one(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    }

    /// Every value given for `key`, as sent (blank ones included, for the caller to refuse).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// Every value of `key`, each also split on commas (`?type=call,email&type=note`).
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.all(key).into_iter().flat_map(|v| v.split(',')).map(str::trim).filter(|v| !v.is_empty()).collect()
    }

    pub fn id(&self, errors: &mut FieldErrors, key: &str) -> Option<i32> {
        let raw = self.one(key)?;
        match raw.trim().parse::<i32>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                errors.add(key, "must be a positive integer id");
                None
            }
        }
    }

    pub fn time(&self, errors: &mut FieldErrors, key: &str) -> Option<DateTime<Utc>> {
        let raw = self.one(key)?;
        match DateTime::parse_from_rfc3339(raw.trim()) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.add(key, "must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z");
                None
            }
        }
    }

    pub fn flag(&self, errors: &mut FieldErrors, key: &str) -> Option<bool> {
        match self.one(key)? {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => {
                errors.add(key, "must be true or false");
                None
            }
        }
    }

    /// One of `allowed` (compared lowercased).
    pub fn choice(&self, errors: &mut FieldErrors, key: &str, allowed: &[&str]) -> Option<String> {
        let raw = self.one(key)?.trim().to_ascii_lowercase();
        if !allowed.contains(&raw.as_str()) {
            errors.add(key, format!("must be one of: {}", allowed.join(", ")));
        }
        Some(raw)
    }

    /// `?count=false` leaves `total_count` out of a page.
    pub fn count(&self) -> bool {
        self.one("count") != Some("false")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn values_and_errors() {
        let p = q(&[("id", "7"), ("id", "9"), ("blank", " "), ("tag", "a"), ("tag", "b,c"), ("at", "nope"), ("f", "yes")]);
        assert_eq!(p.one("id"), Some("9"));
        assert_eq!(p.one("blank"), None);
        assert_eq!(p.all("tag"), vec!["a", "b,c"]);
        assert_eq!(p.list("tag"), vec!["a", "b", "c"]);
        let mut e = FieldErrors::new();
        assert_eq!(p.id(&mut e, "id"), Some(9));
        assert!(e.is_empty());
        assert_eq!(p.time(&mut e, "at"), None);
        assert_eq!(p.flag(&mut e, "f"), None);
        assert_eq!(p.choice(&mut e, "tag", &["x"]), Some("b,c".into()));
        assert!(!e.is_empty());
        assert!(p.count());
        assert!(!q(&[("count", "false")]).count());
    }
}
