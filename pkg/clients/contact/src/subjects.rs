//! The NATS subjects (and event `type`s) contact-service publishes: one constant each,
//! used by the producer and by every consumer. Payload types are beside them in this crate;
//! `docs/asyncapi.yaml` documents each.

pub const CONTACT_CREATED: &str = "contact.created";
pub const CONTACT_UPDATED: &str = "contact.updated";
pub const CONTACT_DELETED: &str = "contact.deleted";
/// Payload: [`crate::ContactConverted`]. The others carry [`crate::ContactBasicInfo`] or
/// [`crate::CompanyBasicInfo`].
pub const CONTACT_CONVERTED: &str = "contact.converted";
/// Payload: [`crate::ContactConsentChanged`].
pub const CONTACT_CONSENT_CHANGED: &str = "contact.consent_changed";
/// Payload: [`crate::ContactBecameInactive`] (the daily inactive-lead job).
pub const CONTACT_BECAME_INACTIVE: &str = "contact.became_inactive";
/// Issue 16: payload [`crate::RecordsMerged`]; consumers move references from the merged
/// ids to the survivor (deal-service, communication-service).
pub const CONTACT_MERGED: &str = "contact.merged";
/// Issue 16: payload [`crate::RecordsMerged`] (companies).
pub const COMPANY_MERGED: &str = "company.merged";
pub const COMPANY_CREATED: &str = "company.created";
pub const COMPANY_UPDATED: &str = "company.updated";
pub const COMPANY_DELETED: &str = "company.deleted";
/// Issue 16 (trash): a contact moved to the trash (`DELETE /contacts/{id}`); payload
/// [`crate::ContactTrashed`]. References to it are kept: it may come back. `contact.deleted`
/// keeps meaning "gone for good" (erased, or purged after the retention).
pub const CONTACT_TRASHED: &str = "contact.trashed";
/// Issue 16 (trash): a trashed contact restored; payload [`crate::ContactBasicInfo`].
pub const CONTACT_RESTORED: &str = "contact.restored";
/// Issue 16 (trash): payload [`crate::CompanyTrashed`].
pub const COMPANY_TRASHED: &str = "company.trashed";
/// Issue 16 (trash): payload [`crate::CompanyBasicInfo`].
pub const COMPANY_RESTORED: &str = "company.restored";
/// Issue 16: custom field definitions; payload: the definition as `GET /custom-fields/{id}`
/// shows it (`custom_field.deleted`: as it was).
pub const CUSTOM_FIELD_CREATED: &str = "custom_field.created";
pub const CUSTOM_FIELD_UPDATED: &str = "custom_field.updated";
pub const CUSTOM_FIELD_DELETED: &str = "custom_field.deleted";
/// Issue 16: lead scoring rules; payload: the rule as `GET /scoring/rules` shows it.
pub const SCORING_RULE_CREATED: &str = "scoring_rule.created";
pub const SCORING_RULE_UPDATED: &str = "scoring_rule.updated";
pub const SCORING_RULE_DELETED: &str = "scoring_rule.deleted";

/// Every subject above.
pub const ALL: &[&str] = &[
    CONTACT_CREATED,
    CONTACT_UPDATED,
    CONTACT_DELETED,
    CONTACT_CONVERTED,
    CONTACT_CONSENT_CHANGED,
    CONTACT_BECAME_INACTIVE,
    CONTACT_MERGED,
    COMPANY_MERGED,
    COMPANY_CREATED,
    COMPANY_UPDATED,
    COMPANY_DELETED,
    CONTACT_TRASHED,
    CONTACT_RESTORED,
    COMPANY_TRASHED,
    COMPANY_RESTORED,
    CUSTOM_FIELD_CREATED,
    CUSTOM_FIELD_UPDATED,
    CUSTOM_FIELD_DELETED,
    SCORING_RULE_CREATED,
    SCORING_RULE_UPDATED,
    SCORING_RULE_DELETED,
];
