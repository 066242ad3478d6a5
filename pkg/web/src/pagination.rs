//! List parameters (`?limit=`, `?cursor=`) and the list response shape.
//!
//! Cursors are opaque to clients but carry the keyset position (e.g. the sort value and id
//! of the last row). They are signed, so a client cannot forge a position, and the server
//! never has to trust a cursor's content beyond its own encoding.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{ApiError, codes};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
/// Longest cursor accepted; real ones are far shorter, so anything longer is garbage.
pub const MAX_CURSOR_LEN: usize = 1024;
const TAG_LEN: usize = 16;

/// `?limit=`: absent means [`DEFAULT_LIMIT`]; it must be an integer in 1..=[`MAX_LIMIT`].
/// Out of range is an error rather than clamped, so a client never silently gets fewer rows
/// than it asked for.
pub fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else { return Ok(DEFAULT_LIMIT) };
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::validation([("limit", format!("must be an integer between 1 and {MAX_LIMIT}"))])),
    }
}

/// Sort direction of a `?sort=field` / `?sort=-field` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortDir {
    Asc,
    Desc,
}

/// `?sort=`: `field` ascending or `-field` descending, `field` from the `allowed` whitelist
/// (the returned name is the whitelist's `&'static str`, safe to splice into SQL).
/// Absent means `default`.
pub fn parse_sort(
    raw: Option<&str>,
    allowed: &[&'static str],
    default: (&'static str, SortDir),
) -> Result<(&'static str, SortDir), ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(default) };
    let (name, dir) = match raw.strip_prefix('-') {
        Some(name) => (name, SortDir::Desc),
        None => (raw, SortDir::Asc),
    };
    allowed
        .iter()
        .find(|a| **a == name)
        .map(|a| (*a, dir))
        .ok_or_else(|| ApiError::validation([("sort", format!("must be one of: {}", allowed.join(", ")))]))
}

/// Signs and verifies cursors: `base64url(json) "." base64url(HMAC-SHA256(json part)[..16])`.
#[derive(Clone)]
pub struct CursorCodec {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(***)")
    }
}

impl CursorCodec {
    /// `key`: a server secret (any length). Use a key of its own or one derived from
    /// `JWT_SECRET`; rotating it only invalidates cursors in flight.
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this never fails.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        Self { mac }
    }

    pub fn encode<T: Serialize>(&self, position: &T) -> String {
        // Serializing a plain position struct cannot fail; an empty payload would simply
        // not decode, which is the safe outcome.
        let json = serde_json::to_vec(position).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = self.tag(payload.as_bytes()).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN]))
    }

    /// Any malformed, tampered, oversized or foreign cursor is a 400 `INVALID_CURSOR`.
    pub fn decode<T: DeserializeOwned>(&self, cursor: &str) -> Result<T, ApiError> {
        let invalid = || ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_CURSOR, "invalid cursor");
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(invalid());
        }
        let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        if tag.len() != TAG_LEN {
            return Err(invalid());
        }
        // Constant-time comparison of the truncated tag.
        self.tag(payload.as_bytes()).verify_truncated_left(&tag).map_err(|_| invalid())?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        serde_json::from_slice(&json).map_err(|_| invalid())
    }

    fn tag(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(payload);
        mac
    }
}

/// `?cursor=` decoded, or `None` when absent or empty.
pub fn parse_cursor<T: DeserializeOwned>(codec: &CursorCodec, raw: Option<&str>) -> Result<Option<T>, ApiError> {
    raw.filter(|s| !s.is_empty()).map(|c| codec.decode(c)).transpose()
}

/// The list response: `{"data": [...], "pagination": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub pagination: PageInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PageInfo {
    pub next_cursor: Option<String>,
    pub has_next: bool,
    /// Omitted with `?count=false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from a query that fetched `limit + 1` rows: the extra row only tells that
    /// there is a next page and is dropped; the cursor points after the last row kept.
    pub fn from_overfetch(
        mut rows: Vec<T>,
        limit: i64,
        total_count: Option<i64>,
        cursor_after: impl FnOnce(&T) -> String,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let has_next = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if has_next { rows.last().map(cursor_after) } else { None };
        Self { data: rows, pagination: PageInfo { next_cursor, has_next, total_count } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pos {
        name: String,
        id: i32,
    }

    fn codec() -> CursorCodec {
        CursorCodec::new(b"test-key")
    }

    fn assert_invalid<T: std::fmt::Debug>(r: Result<T, ApiError>) {
        let err = r.unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.code(), codes::INVALID_CURSOR);
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None).unwrap(), 20);
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "-5", "101", "1000", "abc", "", "1.5", "99999999999999999999"] {
            let err = parse_limit(Some(bad)).unwrap_err();
            assert_eq!(err.code(), codes::VALIDATION_FAILED, "{bad}");
            assert!(err.details().unwrap()["fields"]["limit"].is_string(), "{bad}");
        }
    }

    #[test]
    fn sorts() {
        let allowed = ["name", "created_at"];
        let default = ("created_at", SortDir::Desc);
        assert_eq!(parse_sort(None, &allowed, default).unwrap(), default);
        assert_eq!(parse_sort(Some("name"), &allowed, default).unwrap(), ("name", SortDir::Asc));
        assert_eq!(parse_sort(Some("-name"), &allowed, default).unwrap(), ("name", SortDir::Desc));
        assert!(parse_sort(Some("password_hash"), &allowed, default).is_err());
        assert!(parse_sort(Some("--name"), &allowed, default).is_err());
    }

    #[test]
    fn cursor_round_trip() {
        let pos = Pos { name: "Acme \"quoted\" ☃".into(), id: 42 };
        let cursor = codec().encode(&pos);
        assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert_eq!(codec().decode::<Pos>(&cursor).unwrap(), pos);
        assert_eq!(parse_cursor::<Pos>(&codec(), Some(&cursor)).unwrap(), Some(pos));
        assert_eq!(parse_cursor::<Pos>(&codec(), None).unwrap(), None);
    }

    #[test]
    fn tampered_payload_and_signature_are_rejected() {
        let cursor = codec().encode(&Pos { name: "a".into(), id: 1 });
        let (payload, tag) = cursor.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"name":"a","id":2}"#);
        assert_invalid(codec().decode::<Pos>(&format!("{forged}.{tag}")));
        let mut bad_tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
        bad_tag[0] ^= 1;
        assert_invalid(codec().decode::<Pos>(&format!("{payload}.{}", URL_SAFE_NO_PAD.encode(bad_tag))));
        assert_invalid(CursorCodec::new(b"other-key").decode::<Pos>(&cursor));
        // A valid signature over the wrong type is still an invalid cursor.
        assert_invalid(codec().decode::<Vec<u8>>(&cursor));
    }

    #[test]
    fn garbage_is_rejected() {
        let oversize = "a".repeat(MAX_CURSOR_LEN + 1);
        for bad in ["", ".", "abc", "abc.def", "!!!.???", "eyJ9.", oversize.as_str()] {
            assert_invalid(codec().decode::<Pos>(bad));
        }
    }

    #[test]
    fn page_from_overfetch() {
        let page = Page::from_overfetch(vec![1, 2, 3], 2, Some(10), |n| format!("after-{n}"));
        assert_eq!(page.data, vec![1, 2]);
        assert_eq!(page.pagination, PageInfo { next_cursor: Some("after-2".into()), has_next: true, total_count: Some(10) });
        let last = Page::from_overfetch(vec![1, 2], 2, None, |n| format!("after-{n}"));
        assert_eq!(
            serde_json::to_value(&last).unwrap(),
            serde_json::json!({"data": [1, 2], "pagination": {"next_cursor": null, "has_next": false}})
        );
    }
}
