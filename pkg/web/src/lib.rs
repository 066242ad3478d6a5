//! HTTP plumbing shared by every service.
//!
//! * [`ApiError`]: the one error type and wire shape (`{"error", "code", "details", "request_id"}`).
//! * [`AppJson`], [`AppQuery`], [`AppPath`]: extractors whose rejections use that shape;
//!   [`Created`], [`NoContent`].
//! * [`auth`]: JWTs, the [`AuthUser`] extractor, token guards, the platform operator.
//! * [`Caller`] (the one caller type) and [`Can`] (`Can<perm::DealsWrite>`: the permission
//!   check in the handler's signature, once per request).
//! * [`openapi`]: the finishing pass every service's generated document goes through.
//! * [`revocation`]: [`RevocationGuard`], refusing tokens issued before a role change or
//!   deactivation (requirement 2.4).
//! * [`permissions`]: the role/permission matrix (`user.require(Resource::Deals, Action::Write)`).
//! * [`pagination`]: `?limit=`, signed cursors, [`Page`].
//! * [`finish_router`]: the layers every service ends with (fallbacks, body limit, timeout,
//!   CORS, request id, request log line, metrics); [`serve`].
//! * [`system_routes`]: `/health`, `/ready`, `/metrics`, `/openapi.json`.
//!
//! Wiring in a service:
//!
//! ```ignore
//! #[derive(Clone, axum::extract::FromRef)]
//! struct AppState { auth: crm_web::AuthState, db: crm_tenant::TenantDb }
//!
//! crm_web::init_tracing("contact-service");
//! let api = Router::new().route("/api/v1/contacts", get(list)).with_state(app_state);
//! let router = crm_web::finish_router(api.merge(crm_web::system_routes(system)), "contact-service", CorsConfig::from_env()?);
//! crm_web::serve(router, listener, crm_web::shutdown_signal()).await?;
//! ```

mod app;
pub mod admission;
pub mod auth;
mod error;
pub mod etag;
mod extract;
mod caller;
pub mod openapi;
pub mod observability;
pub mod pagination;
pub mod permissions;
pub mod query;
pub mod rate_limit;
pub mod request_id;
pub mod revocation;
mod system;
pub mod validate;

pub use app::{CorsConfig, InvalidCorsOrigin, Limits, finish_router, finish_router_with, serve, shutdown_signal};
pub use auth::{
    AuthState, AuthUser, Claims, Principal, TenantHosts, GuardChain, JwtKeys, NoGuard, PlatformOperator, Role, Secret,
    TenantStatusGuard, TokenGuard, TokenType,
};
pub use error::{ApiError, ErrorBody, FieldErrors, codes};
pub use etag::{ETag, IfMatch, Tagged};
pub use caller::{Can, Caller, Permission, perm};
pub use query::QueryParams;
pub use extract::{AppJson, AppPath, AppQuery, ClientIp, Created, NoContent, ReadOnlyFields, ReplaceJson};
pub use observability::{init_tracing, metrics_handle};
pub use pagination::{CursorCodec, Page, PageInfo, parse_limit};
pub use permissions::{Action, Resource, Scope};
pub use request_id::RequestId;
pub use revocation::{Revocation, RevocationConfig, RevocationGuard};
pub use system::{ReadyCheck, SystemState, system_routes};
