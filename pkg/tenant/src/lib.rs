//! Tenancy core.
//!
//! * [`TenantId`] and [`SchemaName`]: the schema is derived from the id, never taken from input.
//! * [`TenantDb`]: wraps the pool and hands out only [`TenantTx`] (search path set
//!   transaction-locally to one tenant schema) and [`PlatformTx`] (the `platform` schema).
//!   There is no way to get a bare pooled connection from it, so a session-level
//!   `search_path` cannot be set by request code and cannot leak to the next checkout.
//! * [`read`]: lag-tolerant reads on a streaming replica ([`TenantDb::tenant_read`]) and the
//!   rule that keeps a user's reads consistent with the user's writes (WAL positions).
//! * [`TenantRegistry`]: a short-TTL cache of `platform.tenants`, invalidated by events.
//! * [`resolve`]: tenant from a `Host` subdomain and the `X-Tenant-ID` consistency rule.
//! * [`throttle`]: fixed-window hit counters in `platform.rate_limits` (signup, login).

mod db;
mod ids;
pub mod read;
mod registry;
pub mod resolve;
pub mod throttle;

pub use db::{DbError, PlatformTx, Scoped, Sql, TenantDb, TenantTx};
pub use ids::{InvalidSchemaName, InvalidTenantId, SchemaName, TenantId};
pub use registry::{TenantRecord, TenantRegistry, TenantStatus};
