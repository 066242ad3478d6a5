//! All SQL of deal-service, one module per resource. Every function takes the caller's
//! tenant-scoped transaction ([`crm_tenant::TenantTx`]: its search path is the tenant's
//! schema, and no raw transaction is reachable through it) and returns
//! [`crm_tenant::DbError`], so the caller owns atomicity: a deal, its stage history and its
//! events commit together or not at all.
//!
//! Money crosses the boundary as integer ten-thousandths (`(value * 10000)::int8` out,
//! `$n::int8::numeric / 10000` in), so it stays exact without a decimal type; totals are
//! summed as NUMERIC in SQL, per currency, and only the results are converted.
//!
//! A repository cannot set a session-level search path (nor reach a raw transaction that
//! could):
//!
//! ```compile_fail
//! async fn leak(tx: &crm_tenant::TenantTx) {
//!     tx.batch_execute("SET search_path = tenant_x").await.unwrap();
//! }
//! ```

pub mod deal_contacts;
pub mod deals;
pub mod merge;
pub mod pipeline;
pub mod stages;
pub mod trash;

pub use deals::{DealCursor, DealFields, DealFilter, DealRow, SortKey};
pub use pipeline::BoardFilter;
