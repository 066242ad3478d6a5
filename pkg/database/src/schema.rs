//! The migration sets of the platform, embedded at build time from `db/schema/`.
//!
//! `global` goes into schema `platform`; every other set is applied into every tenant
//! schema, each with its own history table (`<schema>.<set>_schema_history`) so a service
//! can evolve its tables on its own. A service adds its set here and to [`TENANT_SETS`].

use crate::migrate::MigrationSet;

mod global {
    refinery::embed_migrations!("../../db/schema/global");
}
mod events {
    refinery::embed_migrations!("../../db/schema/events");
}

/// Platform tables (tenants, invitations, migration registry, platform outbox).
pub const GLOBAL: MigrationSet = MigrationSet::new("global", global::migrations::runner);

/// Outbox and consumer idempotency records, in every tenant schema.
pub const EVENTS: MigrationSet = MigrationSet::new("events", events::migrations::runner);

/// Every set applied into each tenant schema, in order.
pub const TENANT_SETS: &[MigrationSet] = &[EVENTS];
