//! tenant-service API tests: real HTTP, Postgres and NATS.

mod exports;
mod helpers;
mod invitations;
mod settings;
mod tenants;
