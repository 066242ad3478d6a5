//! tenant-service's public contract: its DTOs (seed 004) and a typed client.

pub mod subjects;
mod client;
mod dto;
mod mock;

pub use client::{HttpTenantClient, TenantClient};
pub use crm_client_core::{CallContext, ClientConfig, ClientError};
pub use dto::{AcceptInvitation, InvitationInfo, TenantBasicInfo, TenantDetails};
pub use mock::MockTenantClient;
