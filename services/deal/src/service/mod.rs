//! The use cases of deal-service, one module per resource. Each takes the caller's proof of
//! permission ([`crm_web::Can`], checked by the handler's extractor) and parsed input, and
//! runs in one tenant-scoped transaction: read, apply the rules (scope checks on rows
//! included), write, enqueue the events ([`crm_events::publish`]), commit. Names are looked
//! up after the commit (no remote call holds a row lock).

use crm_client_deal::DealBasicInfo;
use crm_web::ApiError;

use crate::domain::Money;
use crate::repo::DealRow;

pub mod deal_contacts;
pub mod deals;
pub mod merge;
pub mod pipeline;
pub mod stages;
pub mod trash;

/// The one parser of path ids: anything that is not a positive `i32` cannot exist, so it is
/// simply not found (404 `"{what} not found"`).
pub fn parse_id(raw: &str, what: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::not_found(what))
}

fn basic(row: &DealRow) -> DealBasicInfo {
    DealBasicInfo {
        id: row.id,
        title: row.fields.title.clone(),
        stage: row.fields.stage.clone(),
        value: row.fields.value.map_or(0.0, Money::as_f64),
    }
}

/// 403 for a sales rep acting on a deal it neither owns nor created.
fn own_only(message: &str) -> ApiError {
    ApiError::forbidden(format!("role sales_rep may only {message} deals it owns"))
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn ids_that_cannot_exist_are_not_found() {
        assert_eq!(parse_id("42", "deal").unwrap(), 42);
        for raw in ["0", "-1", "abc", "", "2147483648", "1.5", " 1"] {
            let err = parse_id(raw, "deal").unwrap_err();
            assert_eq!(err.status(), axum::http::StatusCode::NOT_FOUND, "{raw:?}");
        }
    }
}
