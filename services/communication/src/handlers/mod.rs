//! HTTP handlers, thin: extract (the permission is checked by [`crm_web::Can`] in the
//! signature), call one use case of [`crate::service`], map the result to the response.

pub mod activities;
pub mod attachments;
pub mod emails;
pub mod notes;
pub mod reports;
pub mod rules;
pub mod sequences;
pub mod tasks;
pub mod templates;
pub mod tracking;
pub mod unsubscribe;
pub mod webhooks;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// 202 Accepted with a JSON body (`POST /emails`: delivery continues after the response).
pub struct Accepted<T>(pub T);

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, axum::Json(self.0)).into_response()
    }
}
