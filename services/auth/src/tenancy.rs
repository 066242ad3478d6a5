//! Which tenant a request is for.
//!
//! * Public endpoints (login, password reset): the `Host` subdomain (`acme.<BASE_DOMAIN>`), a
//!   `tenant` body field (subdomain or id) or the `X-Tenant-ID` header; when several are
//!   given they must agree.
//! * Authenticated endpoints: the token's tenant; an `X-Tenant-ID` header or a tenant
//!   subdomain in `Host` naming another tenant is refused with 403 `TENANT_MISMATCH` by the
//!   shared `AuthUser` extractor, in every service.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::HOST;
use axum::http::request::Parts;
use crm_tenant::resolve::subdomain_from_host;
use crm_tenant::{TenantId, TenantRecord, TenantStatus};
use crm_web::{ApiError, codes};

use crate::AppState;

/// The tenant hints of a request's headers.
#[derive(Debug, Clone, Default)]
pub struct TenantHints {
    /// Subdomain from `Host`, when it is `<label>.<BASE_DOMAIN>`.
    pub subdomain: Option<String>,
    /// `X-Tenant-ID`, raw.
    pub header: Option<String>,
}

fn host_subdomain(parts: &Parts, base_domain: &str) -> Option<String> {
    let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok()).or_else(|| parts.uri.host())?;
    subdomain_from_host(host, base_domain)
}

impl FromRequestParts<AppState> for TenantHints {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self {
            subdomain: host_subdomain(parts, &state.settings.base_domain),
            header: parts
                .headers
                .get(&crm_web::auth::X_TENANT_ID)
                .map(|v| v.to_str().unwrap_or("\u{fffd}").trim().to_owned())
                .filter(|v| !v.is_empty()),
        })
    }
}

fn tenant_not_found() -> ApiError {
    ApiError::not_found("tenant")
}

/// The tenant of a public request (see the module docs); 400 when none is named or they
/// disagree, 404 when it does not exist, 403 when it is not active.
pub async fn resolve_public(state: &AppState, hints: &TenantHints, field: Option<&str>) -> Result<TenantRecord, ApiError> {
    let field = field.map(str::trim).filter(|f| !f.is_empty());
    let mut found: Option<TenantRecord> = None;
    let candidates = [
        field.map(|f| (f, "tenant")),
        hints.header.as_deref().map(|h| (h, "X-Tenant-ID")),
        hints.subdomain.as_deref().map(|s| (s, "Host")),
    ];
    for (value, source) in candidates.into_iter().flatten() {
        let record = match (source, TenantId::parse(value)) {
            ("Host", _) => state.registry.by_subdomain(value).await?,
            (_, Ok(id)) => state.registry.by_id(&id).await?,
            ("X-Tenant-ID", Err(_)) => return Err(ApiError::validation([("X-Tenant-ID", "must be a tenant id")])),
            _ => state.registry.by_subdomain(value).await?,
        };
        let record = record.ok_or_else(tenant_not_found)?;
        if let Some(previous) = &found
            && previous.id != record.id
        {
            return Err(ApiError::bad_request(format!("{source} names another tenant than the rest of the request")));
        }
        found = Some(record);
    }
    let tenant = found.ok_or_else(|| {
        ApiError::validation([("tenant", "required: give the tenant's subdomain, or use its address or X-Tenant-ID")])
    })?;
    ensure_active(&tenant)?;
    tracing::Span::current().record("tenant_id", tracing::field::display(&tenant.id));
    Ok(tenant)
}

pub fn ensure_active(tenant: &TenantRecord) -> Result<(), ApiError> {
    match tenant.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Suspended => Err(ApiError::new(StatusCode::FORBIDDEN, codes::TENANT_SUSPENDED, "tenant is suspended")),
        TenantStatus::Pending => Err(ApiError::new(StatusCode::FORBIDDEN, codes::TENANT_INACTIVE, "tenant is not active yet")),
    }
}

/// The tenant by id, active, or the error a token of it deserves (401 gone, 403 inactive).
pub async fn active_tenant(state: &AppState, id: &TenantId) -> Result<TenantRecord, ApiError> {
    let tenant = state.registry.by_id(id).await?.ok_or_else(|| ApiError::unauthorized("tenant does not exist"))?;
    ensure_active(&tenant)?;
    Ok(tenant)
}

