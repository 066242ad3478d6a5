//! HTTP handlers: extract, call ONE function of [`crate::service`], answer. The permission
//! is in the signature (`Can<perm::X>`); [`crate::tenancy::Member`] adds the `Host` rule to
//! authenticated requests.

pub mod auth;
pub mod users;
