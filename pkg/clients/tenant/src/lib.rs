//! tenant-service's public contract: its DTOs (seed 004), event subjects and a typed client.
//! `MockTenantClient` (in-memory) is behind the `mock` feature, for other services' tests.

pub mod subjects;
mod client;
mod dto;
#[cfg(any(test, feature = "mock"))]
mod mock;

pub use client::{HttpTenantClient, TenantClient};
pub use crm_client_core::{CallContext, ClientConfig, ClientError};
pub use dto::{
    AcceptInvitation, InvitationInfo, MarketingConsentPolicy, TenantBasicInfo, TenantDetails, TenantSettings, TenantSettingsUpdated,
};
#[cfg(any(test, feature = "mock"))]
pub use mock::MockTenantClient;
