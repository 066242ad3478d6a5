//! The use cases of auth-service, one module per resource: the rules, ONE transaction per
//! use case, the repository calls, the events (through the outbox, in that transaction) and
//! the calls to tenant-service. Handlers call exactly one function here.

pub mod audit;
pub mod password_reset;
pub mod registration;
pub mod sessions;
pub mod users;

use crm_client_tenant::CallContext;
use crm_web::ApiError;

/// The one parser of path ids: anything but a positive `i32` is "not found", like the ids
/// of other tenants.
pub fn parse_id(raw: &str, resource: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::not_found(resource))
}

/// The context of a call made for a public request (no caller token to forward).
fn public_context() -> CallContext {
    let ctx = CallContext::default();
    match crm_web::request_id::current() {
        Some(id) => ctx.with_request_id(id),
        None => ctx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ids_are_positive_i32() {
        assert_eq!(parse_id("42", "user").unwrap(), 42);
        for bad in ["0", "-1", "abc", "99999999999", ""] {
            assert_eq!(parse_id(bad, "user").unwrap_err().status(), axum::http::StatusCode::NOT_FOUND, "{bad}");
        }
    }
}
