//! The NATS subjects (and event `type`s) tenant-service publishes: one constant each,
//! used by the producer and by every consumer. Payload types are beside them in this crate;
//! `docs/asyncapi.yaml` documents each.

pub const TENANT_CREATED: &str = "tenant.created";
pub const TENANT_UPDATED: &str = "tenant.updated";
pub const TENANT_DELETED: &str = "tenant.deleted";
pub const TENANT_USER_INVITED: &str = "tenant.user_invited";
pub const TENANT_USER_JOINED: &str = "tenant.user_joined";
/// A tenant admin changed the settings ([`crate::TenantSettingsUpdated`]).
pub const TENANT_SETTINGS_UPDATED: &str = "tenant.settings_updated";

/// Every subject above.
pub const ALL: &[&str] = &[TENANT_CREATED, TENANT_UPDATED, TENANT_DELETED, TENANT_USER_INVITED, TENANT_USER_JOINED, TENANT_SETTINGS_UPDATED];
