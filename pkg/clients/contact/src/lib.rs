//! contact-service's public contract: its DTOs (seed 004, section 3) and a typed client.

pub mod subjects;
mod client;
mod dto;
mod mock;

pub use client::{ContactClient, HttpContactClient, MAX_BATCH};
pub use crm_client_core::{CallContext, ClientConfig, ClientError};
pub use dto::{
    Address, CompanyBasicInfo, CompanyBatch, CompanyDetails, ContactBasicInfo, ContactBatch, ContactDetails,
    ContactLookup, ContactStatus, CustomFields,
};
pub use mock::MockContactClient;
