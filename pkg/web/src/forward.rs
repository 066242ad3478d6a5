//! Calls to other services on behalf of the caller.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use crm_client_core::CallContext;

use crate::ApiError;

/// Who to call other services as: the caller's bearer token and request id, forwarded, so
/// the callee authorizes and logs the call as the caller's.
pub struct Forward(pub CallContext);

impl<S: Send + Sync> FromRequestParts<S> for Forward {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let bearer = crate::auth::bearer_token(&parts.headers)?.map(str::to_owned);
        Ok(Self(CallContext { bearer, request_id: crate::request_id::current() }))
    }
}
