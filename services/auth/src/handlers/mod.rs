//! HTTP handlers: extract, call ONE function of [`crate::service`], answer. The permission
//! is in the signature (`Can<perm::X>`); the shared `AuthUser` extractor applies the
//! tenant-address (`Host`) rule to every authenticated request.

pub mod audit;
pub mod auth;
pub mod users;
