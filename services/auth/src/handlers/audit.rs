//! `GET /audit`: the tenant's history of changes (issue 16), admins only.

use axum::extract::State;
use crm_web::{ApiError, AppJson, AppQuery, Can, Page, perm};

use crate::AppState;
use crate::input::AuditLogParams;
use crate::service::audit::{self, AuditEntry};

/// Every create, update and delete in the tenant (all services; by users, rules and jobs),
/// newest first, with actor, request id, time and the changed fields (old -> new).
/// Admins only. Entries appear once the change's event is consumed (normally well under a
/// second) and are kept `AUDIT_RETENTION_DAYS` (default 365).
#[utoipa::path(get, path = "/api/v1/audit", params(AuditLogParams), tag = "audit",
    responses((status = 200, description = "A page of audit entries, newest first", body = Page<AuditEntry>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_audit(
    State(state): State<AppState>,
    can: Can<perm::AuditRead>,
    AppQuery(params): AppQuery<AuditLogParams>,
) -> Result<AppJson<Page<AuditEntry>>, ApiError> {
    Ok(AppJson(audit::list(&state, &can, &params).await?))
}
