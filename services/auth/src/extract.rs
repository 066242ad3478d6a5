//! Request and response helpers of auth-service.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_web::AppJson;
use serde::Serialize;

/// 202 Accepted with a JSON body.
pub struct Accepted<T>(pub T);

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, AppJson(self.0)).into_response()
    }
}
