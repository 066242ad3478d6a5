//! All SQL of auth-service, one module per resource. Every function takes the use case's
//! tenant-scoped transaction (tables unqualified, in the tenant schema; the platform tables
//! written with it are schema-qualified) and returns [`DbError`].

pub mod audit;
pub mod resets;
pub mod sessions;

pub mod users;

pub use crm_tenant::DbError;

type Result<T> = std::result::Result<T, DbError>;
