//! The NATS subjects (and event `type`s) contact-service publishes: one constant each,
//! used by the producer and by every consumer. Payload types are beside them in this crate;
//! `docs/asyncapi.yaml` documents each.

pub const CONTACT_CREATED: &str = "contact.created";
pub const CONTACT_UPDATED: &str = "contact.updated";
pub const CONTACT_DELETED: &str = "contact.deleted";
/// Payload: [`crate::ContactConverted`]. The others carry [`crate::ContactBasicInfo`] or
/// [`crate::CompanyBasicInfo`].
pub const CONTACT_CONVERTED: &str = "contact.converted";
pub const COMPANY_CREATED: &str = "company.created";
pub const COMPANY_UPDATED: &str = "company.updated";
pub const COMPANY_DELETED: &str = "company.deleted";

/// Every subject above.
pub const ALL: &[&str] = &[CONTACT_CREATED, CONTACT_UPDATED, CONTACT_DELETED, CONTACT_CONVERTED, COMPANY_CREATED, COMPANY_UPDATED, COMPANY_DELETED];
