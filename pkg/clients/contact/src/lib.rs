//! contact-service's public contract: its DTOs (seed 004, section 3), the subjects of its
//! events ([`subjects`]) and a typed client. `MockContactClient` exists only with the `mock`
//! feature, which other crates enable in their `[dev-dependencies]`.

pub mod subjects;
mod cached;
mod client;
mod dto;
#[cfg(any(test, feature = "mock"))]
mod mock;

pub use cached::CachedContactClient;
pub use client::{ContactClient, HttpContactClient, MAX_BATCH};
pub use crm_client_core::{CallContext, ClientConfig, ClientError};
pub use dto::{
    Address, CompanyBasicInfo, CompanyBatch, CompanyDetails, CompanyTrashed, ConsentChange, ConsentRecord, ContactBasicInfo, ContactBatch,
    ContactBecameInactive, ContactConsentChanged, ContactConverted, ContactDetails, ContactLookup, ContactStatus, ContactTrashed, CustomFields,
    MarketingConsent, RecordsMerged,
};
/// In-memory stand-in for other services' tests (feature `mock`, dev-dependencies only).
#[cfg(any(test, feature = "mock"))]
pub use mock::MockContactClient;
