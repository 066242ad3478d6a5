//! The NATS subjects (and event `type`s) auth-service publishes: one constant each,
//! used by the producer and by every consumer. Payload types are beside them in this crate;
//! `docs/asyncapi.yaml` documents each.

pub const USER_CREATED: &str = "user.created";
pub const USER_UPDATED: &str = "user.updated";
pub const USER_DEACTIVATED: &str = "user.deactivated";
pub const USER_LOGIN: &str = "user.login";
pub const USER_PASSWORD_RESET: &str = "user.password_reset";
pub const USER_PASSWORD_RESET_REQUESTED: &str = "user.password_reset_requested";
/// A session ended by logout: its access token is refused from now on (every service's
/// revocation guard reads `platform.revoked_tokens` at once when this arrives).
pub const USER_LOGGED_OUT: &str = "user.logged_out";

/// Every subject above.
pub const ALL: &[&str] = &[USER_CREATED, USER_UPDATED, USER_DEACTIVATED, USER_LOGIN, USER_PASSWORD_RESET, USER_PASSWORD_RESET_REQUESTED, USER_LOGGED_OUT];
