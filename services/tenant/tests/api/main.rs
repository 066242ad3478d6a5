//! tenant-service API tests: real HTTP, Postgres and NATS.

mod helpers;
mod invitations;
mod settings;
mod tenants;
