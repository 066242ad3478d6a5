//! HTTP handlers, thin: extract (the permission is proven by `Can<perm::X>` in the
//! signature), call ONE service function, map the result. Their `#[utoipa::path]` is the
//! documentation of the route; `crate::api` registers both from one list.

pub mod companies;
pub mod consent;
pub mod contacts;
pub mod custom_fields;
pub mod merge;
pub mod scoring;
pub mod tags;
pub mod transfer;
pub mod trash;

use crm_web::ApiError;

/// Ids in paths: one that cannot exist (not a positive i32) is simply not found.
pub fn parse_id(raw: &str, what: &str) -> Result<i32, ApiError> {
    match raw.parse::<i32>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::not_found(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_cannot_exist_are_not_found() {
        assert_eq!(parse_id("42", "contact").ok(), Some(42));
        for raw in ["0", "-1", "abc", "2147483648", "1.5", ""] {
            assert_eq!(parse_id(raw, "contact").unwrap_err().status(), axum::http::StatusCode::NOT_FOUND, "{raw}");
        }
    }
}
