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
mod auth {
    refinery::embed_migrations!("../../db/schema/auth");
}
mod contact {
    refinery::embed_migrations!("../../db/schema/contact");
}
mod deal {
    refinery::embed_migrations!("../../db/schema/deal");
}
mod communication {
    refinery::embed_migrations!("../../db/schema/communication");
}

/// Platform tables (tenants, invitations, migration registry, platform outbox).
pub const GLOBAL: MigrationSet = MigrationSet::new("global", global::migrations::runner);

/// Outbox and consumer idempotency records, in every tenant schema.
pub const EVENTS: MigrationSet = MigrationSet::new("events", events::migrations::runner);

/// auth-service: users, refresh tokens, password resets, audit trail.
pub const AUTH: MigrationSet = MigrationSet::new("auth", auth::migrations::runner);
/// contact-service: companies, contacts.
pub const CONTACT: MigrationSet = MigrationSet::new("contact", contact::migrations::runner);
/// deal-service: deals, deal contacts, pipeline stages.
pub const DEAL: MigrationSet = MigrationSet::new("deal", deal::migrations::runner);
/// communication-service: activities, tasks, email templates and tracking.
pub const COMMUNICATION: MigrationSet = MigrationSet::new("communication", communication::migrations::runner);

/// Every set applied into each tenant schema, in order.
pub const TENANT_SETS: &[MigrationSet] = &[EVENTS, AUTH, CONTACT, DEAL, COMMUNICATION];
