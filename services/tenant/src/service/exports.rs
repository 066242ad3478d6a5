//! Tenant export (issue 16, "Tenant export"): NOT BUILT YET. `POST /tenants/{id}/export` and
//! `GET /tenants/{id}/exports/{export_id}` check who asks (the tenant's admins; another
//! tenant's id is "not found") and then answer 501 `NOT_IMPLEMENTED`, so a client can tell
//! "not available on this installation" from a failure. The planned shape is in
//! `docs/API.md` (tenant-service).

use crm_web::{ApiError, Can, perm};

use super::parse_tenant_id;

const NOT_BUILT: &str =
    "tenant export is not available yet on this installation (planned: an archive of every record of every service, JSON Lines per resource plus files)";

/// `POST /tenants/{id}/export`: 404 for another tenant, then 501.
pub fn start(can: &Can<perm::TenantWrite>, raw_id: &str) -> Result<(), ApiError> {
    let id = parse_tenant_id(raw_id)?;
    if can.tenant_id != id {
        return Err(ApiError::not_found("tenant"));
    }
    Err(ApiError::not_implemented(NOT_BUILT))
}

/// `GET /tenants/{id}/exports/{export_id}`: 404 for another tenant, then 501.
pub fn status(can: &Can<perm::TenantWrite>, raw_id: &str, _export_id: &str) -> Result<(), ApiError> {
    start(can, raw_id)
}
