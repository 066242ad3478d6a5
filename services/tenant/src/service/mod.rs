//! The use cases of tenant-service, one module per resource: the rules, the one platform
//! transaction, the repository calls, the outbox events and the schema changes.

pub mod archive;
pub mod exports;
pub mod invitations;
pub mod settings;
pub mod spares;
pub mod tenants;

use crm_tenant::TenantId;
use crm_web::{ApiError, AuthUser};

/// The one parser of tenant ids in paths: an id that cannot exist is simply not found (no
/// hint about the format of real ids).
pub fn parse_tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|_| ApiError::not_found("tenant"))
}

/// Members see their own tenant only; another tenant's id is "not found", never "forbidden".
fn ensure_member(user: &AuthUser, id: &TenantId) -> Result<(), ApiError> {
    if user.tenant_id == *id { Ok(()) } else { Err(ApiError::not_found("tenant")) }
}
