//! HTTP handlers: extract (state, caller or permission, path, query, body), call one
//! service function, map the result. The rules live in [`crate::service`].

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_client_tenant::{AcceptInvitation, InvitationInfo, TenantBasicInfo, TenantDetails, TenantSettings};
use crm_web::etag::{ETag, IfMatch, Tagged};
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Caller, Can, ClientIp, Created, NoContent, Page, PlatformOperator, Principal, perm};

use crate::AppState;
use crate::input::{InvitationListParams, NewInvitation, NewTenant, TenantPatch, TenantSettingsPatch};
use crate::service::exports::ExportInfo;
use crate::service::tenants::{SignupResponse, TenantLookup};
use crate::service::{exports, invitations, settings, tenants};

/// Sign up a tenant: registry row, schema with every service's tables, and an `admin`
/// invitation, in one go. Open to anyone when `TENANT_SIGNUP=open` (limited per client
/// IP); the platform operator's token lifts both.
#[utoipa::path(post, path = "/api/v1/tenants", request_body = NewTenant, tag = "tenants",
    responses((status = 201, description = "signed up", body = SignupResponse), (status = 400), (status = 403), (status = 409),
        (status = 415), (status = 429)))]
pub async fn signup(
    State(state): State<AppState>,
    operator: Option<PlatformOperator>,
    ClientIp(ip): ClientIp,
    AppJson(new): AppJson<NewTenant>,
) -> Result<Created<SignupResponse>, ApiError> {
    Ok(Created(tenants::signup(&state, operator, &ip, new).await?))
}

/// The tenant behind a subdomain, with its status (public: for a login page).
#[utoipa::path(get, path = "/api/v1/tenants/by-subdomain/{subdomain}", tag = "tenants",
    params(("subdomain" = String, Path, description = "e.g. `acme` for acme.crm.example.com")),
    responses((status = 200, description = "the tenant", body = TenantLookup), (status = 404)))]
pub async fn by_subdomain(State(state): State<AppState>, AppPath(subdomain): AppPath<String>) -> Result<AppJson<TenantLookup>, ApiError> {
    Ok(AppJson(tenants::by_subdomain(&state, &subdomain).await?))
}

/// A tenant's details (its members and the platform operator).
#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path, description = "tenant id (ULID)")),
    responses((status = 200, description = "the tenant", body = TenantDetails, headers(("ETag" = String, description = "the record's version"))), (status = 401), (status = 404)))]
pub async fn get_tenant(State(state): State<AppState>, principal: Principal, AppPath(id): AppPath<String>) -> Result<Tagged<TenantDetails>, ApiError> {
    let tenant = tenants::get(&state, &principal, &id).await?;
    Ok(Tagged::new(ETag::of(tenant.updated_at), tenant))
}

/// What other services need of a tenant (its members, service tokens included, and the
/// platform operator).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/basic", tag = "tenants",
    params(("id" = String, Path, description = "tenant id (ULID)")),
    responses((status = 200, description = "the tenant", body = TenantBasicInfo), (status = 401), (status = 404)))]
pub async fn get_basic(State(state): State<AppState>, principal: Principal, AppPath(id): AppPath<String>) -> Result<AppJson<TenantBasicInfo>, ApiError> {
    Ok(AppJson(tenants::get_basic(&state, &principal, &id).await?))
}

/// Rename (tenant admin) or change the status (platform operator).
#[utoipa::path(patch, path = "/api/v1/tenants/{id}", request_body = TenantPatch, tag = "tenants",
    params(("id" = String, Path, description = "tenant id (ULID)")),
    responses((status = 200, description = "the updated tenant", body = TenantDetails, headers(("ETag" = String, description = "the record's version"))),
        (status = 400), (status = 401), (status = 403), (status = 404), (status = 412), (status = 415)))]
pub async fn patch_tenant(
    State(state): State<AppState>,
    principal: Principal,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(patch): AppJson<TenantPatch>,
) -> Result<Tagged<TenantDetails>, ApiError> {
    let tenant = tenants::update(&state, &principal, &id, &if_match, patch).await?;
    Ok(Tagged::new(ETag::of(tenant.updated_at), tenant))
}

/// The tenant's settings (its members, service tokens of the tenant, and the platform operator).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/settings", tag = "tenants",
    params(("id" = String, Path, description = "tenant id (ULID)")),
    responses((status = 200, description = "the settings", body = TenantSettings, headers(("ETag" = String, description = "the settings' version"))),
        (status = 401), (status = 403), (status = 404)))]
pub async fn get_settings(State(state): State<AppState>, principal: Principal, AppPath(id): AppPath<String>) -> Result<Tagged<TenantSettings>, ApiError> {
    let (found, version) = settings::get(&state, &principal, &id).await?;
    Ok(Tagged::new(ETag::of(version), found))
}

/// Change some settings (tenant admins); publishes `tenant.settings_updated`.
#[utoipa::path(patch, path = "/api/v1/tenants/{id}/settings", request_body = TenantSettingsPatch, tag = "tenants",
    params(("id" = String, Path, description = "tenant id (ULID)")),
    responses((status = 200, description = "the settings after the change", body = TenantSettings, headers(("ETag" = String, description = "the settings' version"))),
        (status = 400), (status = 401), (status = 403), (status = 404), (status = 412), (status = 415)))]
pub async fn patch_settings(
    State(state): State<AppState>,
    principal: Principal,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(patch): AppJson<TenantSettingsPatch>,
) -> Result<Tagged<TenantSettings>, ApiError> {
    let (found, version) = settings::update(&state, &principal, &id, &if_match, patch).await?;
    Ok(Tagged::new(ETag::of(version), found))
}

/// Delete a tenant with all its data (drops the schema); platform operator only.
#[utoipa::path(delete, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path, description = "tenant id (ULID)")),
    responses((status = 204, description = "deleted"), (status = 401), (status = 404), (status = 412)))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    operator: PlatformOperator,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
) -> Result<NoContent, ApiError> {
    tenants::delete(&state, operator, &id, &if_match).await?;
    Ok(NoContent)
}

/// Invite someone to the tenant (admins and managers; only an admin invites an admin).
#[utoipa::path(post, path = "/api/v1/tenants/{id}/invitations", request_body = NewInvitation, tag = "invitations",
    params(("id" = String, Path, description = "tenant id (ULID)")),
    responses((status = 201, description = "invited; the token is in this answer only", body = InvitationInfo), (status = 400),
        (status = 401), (status = 403), (status = 404), (status = 409), (status = 415)))]
pub async fn create_invitation(
    State(state): State<AppState>,
    can: Can<perm::InvitationsWrite>,
    AppPath(id): AppPath<String>,
    AppJson(new): AppJson<NewInvitation>,
) -> Result<Created<InvitationInfo>, ApiError> {
    Ok(Created(invitations::create(&state, &can, &id, new).await?))
}

/// The tenant's invitations, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/invitations", tag = "invitations",
    params(("id" = String, Path, description = "tenant id (ULID)"), InvitationListParams),
    responses((status = 200, description = "a page of invitations", body = Page<InvitationInfo>), (status = 400), (status = 401),
        (status = 403), (status = 404)))]
pub async fn list_invitations(
    State(state): State<AppState>,
    can: Can<perm::InvitationsRead>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<InvitationListParams>,
) -> Result<AppJson<Page<InvitationInfo>>, ApiError> {
    Ok(AppJson(invitations::list(&state, &can, &id, params).await?))
}

/// Revoke a pending invitation.
#[utoipa::path(delete, path = "/api/v1/tenants/{id}/invitations/{invitation_id}", tag = "invitations",
    params(("id" = String, Path, description = "tenant id (ULID)"), ("invitation_id" = String, Path, description = "invitation id (ULID)")),
    responses((status = 204, description = "revoked"), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    can: Can<perm::InvitationsDelete>,
    AppPath((id, invitation_id)): AppPath<(String, String)>,
) -> Result<NoContent, ApiError> {
    invitations::revoke(&state, &can, &id, &invitation_id).await?;
    Ok(NoContent)
}

/// The invitation behind a token, without the token (for the registration page).
#[utoipa::path(get, path = "/api/v1/invitations/{token}", tag = "invitations",
    params(("token" = String, Path, description = "the invitation token")),
    responses((status = 200, description = "the invitation", body = InvitationInfo), (status = 404)))]
pub async fn invitation_by_token(State(state): State<AppState>, AppPath(token): AppPath<String>) -> Result<AppJson<InvitationInfo>, ApiError> {
    Ok(AppJson(invitations::by_token(&state, &token).await?))
}

/// Accept an invitation (auth-service, with a service token of the invitation's tenant).
#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", request_body = AcceptInvitation, tag = "invitations",
    params(("token" = String, Path, description = "the invitation token")),
    responses((status = 200, description = "accepted", body = InvitationInfo), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409), (status = 410), (status = 415)))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(token): AppPath<String>,
    AppJson(body): AppJson<AcceptInvitation>,
) -> Result<AppJson<InvitationInfo>, ApiError> {
    Ok(AppJson(invitations::accept(&state, &caller, &token, body).await?))
}

/// Export every record of the tenant (tenant admins): 202 with the export job; the archive
/// (tar.gz: `manifest.json` and JSON Lines per table of every service) is built in the
/// background. Asking again while one is unfinished answers that one.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/export", tag = "tenants",
    params(("id" = String, Path, description = "tenant id (ULID)")),
    responses((status = 202, body = ExportInfo), (status = 401), (status = 403), (status = 404)))]
pub async fn start_export(State(state): State<AppState>, can: Can<perm::TenantWrite>, AppPath(id): AppPath<String>) -> Result<(StatusCode, AppJson<ExportInfo>), ApiError> {
    Ok((StatusCode::ACCEPTED, AppJson(exports::start(&state, &can, &id).await?)))
}

/// A tenant export's status (tenant admins); `download_url` once it is done.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/exports/{export_id}", tag = "tenants",
    params(("id" = String, Path, description = "tenant id (ULID)"), ("export_id" = String, Path, description = "export id")),
    responses((status = 200, body = ExportInfo), (status = 401), (status = 403), (status = 404)))]
pub async fn get_export(State(state): State<AppState>, can: Can<perm::TenantWrite>, AppPath((id, export_id)): AppPath<(String, String)>) -> Result<AppJson<ExportInfo>, ApiError> {
    Ok(AppJson(exports::status(&state, &can, &id, &export_id).await?))
}

/// Download a finished tenant export (tenant admins): `application/gzip`, 409 while it is not done.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/exports/{export_id}/archive", tag = "tenants",
    params(("id" = String, Path, description = "tenant id (ULID)"), ("export_id" = String, Path, description = "export id")),
    responses((status = 200, content_type = "application/gzip", body = Vec<u8>), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn download_export(State(state): State<AppState>, can: Can<perm::TenantWrite>, AppPath((id, export_id)): AppPath<(String, String)>) -> Result<Response, ApiError> {
    let download = exports::download(&state, &can, &id, &export_id).await?;
    let disposition = format!("attachment; filename=\"{}\"", download.file_name);
    let length = download.size;
    let mut response = Body::from_stream(exports::body_stream(download)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(ApiError::internal)?);
    Ok(response)
}
