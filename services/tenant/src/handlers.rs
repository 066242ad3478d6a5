//! HTTP handlers: parse, authorize, call the repository inside one transaction, answer.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use crm_client_tenant::{AcceptInvitation, InvitationInfo, TenantBasicInfo, TenantDetails};
use crm_events::{Envelope, enqueue};
use crm_tenant::{PlatformTx, TenantId};
use crm_web::pagination::parse_cursor;
use crm_web::{
    Action, ApiError, AppJson, AppPath, AppQuery, AuthUser, Caller, ClientIp, Created, FieldErrors, NoContent,
    Page, PlatformOperator, Resource, Role, parse_limit,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::domain::{check_subdomain, hash_token, new_token};
use crm_web::validate;
use crate::repo::{self, InvitationCursor, NewInvitation};

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignupRequest {
    pub name: String,
    /// 3-63 characters of `[a-z0-9-]`, not starting or ending with `-`, not reserved.
    pub subdomain: String,
    pub admin_email: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignupResponse {
    pub tenant: TenantDetails,
    /// The `admin` invitation for `admin_email`, with its token (shown this once).
    pub invitation: InvitationInfo,
}

/// TenantBasicInfo plus the status, for a login page on the subdomain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantLookup {
    #[serde(flatten)]
    pub tenant: TenantBasicInfo,
    pub status: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub name: Option<String>,
    /// `active` or `suspended`; platform operator only.
    pub status: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InvitationRequest {
    pub email: String,
    /// admin, manager, sales_rep, viewer
    pub role: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationListParams {
    /// pending, accepted, expired, revoked
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// `false` omits `total_count`.
    pub count: Option<bool>,
}

fn parse_tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    // An id that cannot exist is simply not found (no hint about the format of real ids).
    TenantId::parse(raw).map_err(|_| ApiError::not_found("tenant"))
}

/// Members see their own tenant only; another tenant's id is "not found", never "forbidden".
fn ensure_member(user: &AuthUser, id: &TenantId) -> Result<(), ApiError> {
    if user.tenant_id == *id { Ok(()) } else { Err(ApiError::not_found("tenant")) }
}

fn basic(t: &TenantDetails) -> TenantBasicInfo {
    TenantBasicInfo { id: t.id.clone(), name: t.name.clone(), subdomain: t.subdomain.clone(), schema_name: t.schema_name.clone() }
}

/// Event payload of `tenant.*`: TenantBasicInfo + status.
fn tenant_event_data(t: &TenantDetails) -> TenantLookup {
    TenantLookup { tenant: basic(t), status: t.status.clone() }
}

async fn publish(tx: &PlatformTx<'_>, event_type: &str, tenant: &TenantId, actor: Option<String>, data: impl Serialize) -> Result<(), ApiError> {
    let event = Envelope::new(event_type, tenant, actor, data).map_err(ApiError::internal)?;
    enqueue(tx, &event).await?;
    Ok(())
}

fn subdomain_taken(e: tokio_postgres::Error) -> ApiError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        ApiError::conflict("SUBDOMAIN_TAKEN", "this subdomain is already taken")
    } else {
        e.into()
    }
}

/// Sign up a tenant: registry row, schema with every service's tables, and an `admin`
/// invitation, in one transaction.
#[utoipa::path(post, path = "/api/v1/tenants", request_body = SignupRequest, tag = "tenants",
    responses((status = 201, body = SignupResponse), (status = 400), (status = 403), (status = 409), (status = 429)))]
pub async fn signup(
    State(state): State<AppState>,
    operator: Option<PlatformOperator>,
    ClientIp(ip): ClientIp,
    AppJson(req): AppJson<SignupRequest>,
) -> Result<Created<SignupResponse>, ApiError> {
    let mut conn = state.db.connect().await?;
    if operator.is_none() {
        if !state.config.signup_open {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "SIGNUP_CLOSED", "signup is closed: ask the platform operator"));
        }
        let tx = conn.platform().await?;
        let (hits, retry_after) = crm_tenant::throttle::count_hit(&tx, &format!("signup:{ip}"), 3600).await?;
        tx.commit().await?;
        if hits > state.config.signup_per_ip_per_hour {
            tracing::info!(security_event = "signup_rate_limited", ip, "signup rate limit reached");
            return Err(ApiError::too_many_requests(retry_after as u64));
        }
    }

    let mut errors = FieldErrors::new();
    let name = validate::text(&mut errors, "name", &req.name, 255);
    let subdomain = check_subdomain(&mut errors, &req.subdomain);
    let admin_email = validate::email(&mut errors, "admin_email", &req.admin_email);
    errors.into_result()?;

    let (token, token_hash) = new_token();
    let actor = Some(if operator.is_some() { "platform_operator" } else { "signup" }.to_owned());
    let tx = conn.platform().await?;
    let spare = if state.config.spare_schemas > 0 { repo::take_spare(&tx).await? } else { None };
    let id = spare.unwrap_or_default();
    let tenant = repo::insert_tenant(&tx, &id, &name, &subdomain).await.map_err(subdomain_taken)?;
    let mut invitation = repo::insert_invitation(
        &tx,
        &NewInvitation {
            id: ulid::Ulid::generate().to_string(),
            tenant_id: &id,
            email: &admin_email,
            role: Role::Admin.as_str(),
            token_hash: &token_hash,
            expires_at: Utc::now() + state.config.invitation_ttl,
            invited_by: None,
        },
    )
    .await?;
    invitation.token = Some(token);
    publish(&tx, "tenant.created", &id, actor.clone(), tenant_event_data(&tenant)).await?;
    publish(&tx, "tenant.user_invited", &id, actor, &invitation).await?;
    // Last: it moves this transaction's search path into the new schema. For a spare it only
    // confirms the schema is current (a few cheap reads).
    crm_database::migrate::provision_schema(&tx, id.schema().as_str()).await.map_err(ApiError::internal)?;
    tx.commit().await?;
    if spare.is_some() {
        state.spares_taken.notify_one();
    }
    tracing::info!(tenant_id = %id, subdomain, from_spare = spare.is_some(), "tenant provisioned");
    Ok(Created(SignupResponse { tenant, invitation }))
}

#[utoipa::path(get, path = "/api/v1/tenants/by-subdomain/{subdomain}", tag = "tenants",
    responses((status = 200, body = TenantLookup), (status = 404)))]
pub async fn by_subdomain(State(state): State<AppState>, AppPath(subdomain): AppPath<String>) -> Result<AppJson<TenantLookup>, ApiError> {
    let mut conn = state.db.connect().await?;
    let tx = conn.platform().await?;
    let tenant = repo::tenant_by_subdomain(&tx, &subdomain.to_ascii_lowercase()).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    Ok(AppJson(tenant_event_data(&tenant)))
}

async fn load_visible(state: &AppState, caller: &Caller, raw_id: &str) -> Result<TenantDetails, ApiError> {
    let id = parse_tenant_id(raw_id)?;
    if let Caller::User(user) = caller {
        ensure_member(user, &id)?;
    }
    let mut conn = state.db.connect().await?;
    let tx = conn.platform().await?;
    let tenant = repo::tenant_by_id(&tx, &id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    Ok(tenant)
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants",
    responses((status = 200, body = TenantDetails), (status = 401), (status = 404)))]
pub async fn get_tenant(State(state): State<AppState>, caller: Caller, AppPath(id): AppPath<String>) -> Result<AppJson<TenantDetails>, ApiError> {
    Ok(AppJson(load_visible(&state, &caller, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/basic", tag = "tenants",
    responses((status = 200, body = TenantBasicInfo), (status = 401), (status = 404)))]
pub async fn get_basic(State(state): State<AppState>, caller: Caller, AppPath(id): AppPath<String>) -> Result<AppJson<TenantBasicInfo>, ApiError> {
    Ok(AppJson(basic(&load_visible(&state, &caller, &id).await?)))
}

/// Rename (tenant admin) or change the status (platform operator).
#[utoipa::path(patch, path = "/api/v1/tenants/{id}", request_body = TenantPatch, tag = "tenants",
    responses((status = 200, body = TenantDetails), (status = 400), (status = 403), (status = 404)))]
pub async fn patch_tenant(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(raw_id): AppPath<String>,
    AppJson(patch): AppJson<TenantPatch>,
) -> Result<AppJson<TenantDetails>, ApiError> {
    let id = parse_tenant_id(&raw_id)?;
    let actor = match &caller {
        Caller::Operator => "platform_operator".to_owned(),
        Caller::User(user) => {
            ensure_member(user, &id)?;
            user.require(Resource::Tenant, Action::Write)?;
            if patch.status.is_some() {
                return Err(ApiError::forbidden("only the platform operator changes a tenant's status"));
            }
            user.user_id.to_string()
        }
    };
    let mut errors = FieldErrors::new();
    let name = patch.name.as_deref().map(|n| validate::text(&mut errors, "name", n, 255));
    if let Some(status) = &patch.status {
        errors.check("status", matches!(status.as_str(), "active" | "suspended"), "must be active or suspended");
    }
    if patch.name.is_none() && patch.status.is_none() {
        errors.add("name", "nothing to update: give name and/or status");
    }
    errors.into_result()?;

    let mut conn = state.db.connect().await?;
    let tx = conn.platform().await?;
    repo::tenant_for_update(&tx, &id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let tenant = repo::update_tenant(&tx, &id, name.as_deref(), patch.status.as_deref()).await?;
    publish(&tx, "tenant.updated", &id, Some(actor), tenant_event_data(&tenant)).await?;
    tx.commit().await?;
    // This instance refuses a suspended tenant's tokens at once; others when the event arrives.
    state.registry.invalidate(&id);
    Ok(AppJson(tenant))
}

/// Delete a tenant with all its data (drops the schema).
#[utoipa::path(delete, path = "/api/v1/tenants/{id}", tag = "tenants",
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete_tenant(State(state): State<AppState>, _op: PlatformOperator, AppPath(raw_id): AppPath<String>) -> Result<NoContent, ApiError> {
    let id = parse_tenant_id(&raw_id)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.platform().await?;
    let tenant = repo::tenant_for_update(&tx, &id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    crm_database::migrate::drop_schema(&tx, id.schema().as_str()).await.map_err(ApiError::internal)?;
    repo::delete_tenant(&tx, &id).await?;
    publish(&tx, "tenant.deleted", &id, Some("platform_operator".into()), tenant_event_data(&tenant)).await?;
    tx.commit().await?;
    state.registry.invalidate(&id);
    tracing::info!(tenant_id = %id, "tenant deleted");
    Ok(NoContent)
}

#[utoipa::path(post, path = "/api/v1/tenants/{id}/invitations", request_body = InvitationRequest, tag = "invitations",
    responses((status = 201, body = InvitationInfo), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn create_invitation(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(raw_id): AppPath<String>,
    AppJson(req): AppJson<InvitationRequest>,
) -> Result<Created<InvitationInfo>, ApiError> {
    let id = parse_tenant_id(&raw_id)?;
    ensure_member(&user, &id)?;
    user.require(Resource::Invitations, Action::Write)?;
    let mut errors = FieldErrors::new();
    let email = validate::email(&mut errors, "email", &req.email);
    let role = validate::member_role(&mut errors, "role", &req.role);
    errors.into_result()?;
    let Some(role) = role else { return Err(ApiError::bad_request("invalid role")) };
    if role == Role::Admin && user.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin can invite an admin"));
    }

    let (token, token_hash) = new_token();
    let mut conn = state.db.connect().await?;
    let tx = conn.platform().await?;
    repo::tenant_for_update(&tx, &id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    if repo::has_pending_invitation(&tx, &id, &email).await? {
        return Err(ApiError::conflict("INVITATION_PENDING", "this email already has a pending invitation"));
    }
    let mut invitation = repo::insert_invitation(
        &tx,
        &NewInvitation {
            id: ulid::Ulid::generate().to_string(),
            tenant_id: &id,
            email: &email,
            role: role.as_str(),
            token_hash: &token_hash,
            expires_at: Utc::now() + state.config.invitation_ttl,
            invited_by: Some(user.user_id),
        },
    )
    .await?;
    invitation.token = Some(token);
    publish(&tx, "tenant.user_invited", &id, Some(user.user_id.to_string()), &invitation).await?;
    tx.commit().await?;
    Ok(Created(invitation))
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/invitations", params(InvitationListParams), tag = "invitations",
    responses((status = 200, body = Page<InvitationInfo>), (status = 400), (status = 403), (status = 404)))]
pub async fn list_invitations(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(raw_id): AppPath<String>,
    AppQuery(params): AppQuery<InvitationListParams>,
) -> Result<AppJson<Page<InvitationInfo>>, ApiError> {
    let id = parse_tenant_id(&raw_id)?;
    ensure_member(&user, &id)?;
    user.require(Resource::Invitations, Action::Read)?;
    let limit = parse_limit(params.limit.as_deref())?;
    let after: Option<InvitationCursor> = parse_cursor(&state.cursors, params.cursor.as_deref())?;
    if let Some(status) = &params.status
        && !matches!(status.as_str(), "pending" | "accepted" | "expired" | "revoked")
    {
        return Err(ApiError::validation([("status", "must be one of: pending, accepted, expired, revoked")]));
    }
    let mut conn = state.db.connect().await?;
    let tx = conn.platform().await?;
    let rows = repo::list_invitations(&tx, &id, params.status.as_deref(), after.as_ref(), limit).await?;
    let total = if params.count == Some(false) { None } else { Some(repo::count_invitations(&tx, &id, params.status.as_deref()).await?) };
    tx.commit().await?;
    let page = Page::from_overfetch(rows, limit, total, |last| {
        state.cursors.encode(&InvitationCursor { created_at: last.created_at, id: last.info.id.clone() })
    });
    Ok(AppJson(Page { data: page.data.into_iter().map(|r| r.info).collect(), pagination: page.pagination }))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{id}/invitations/{invitation_id}", tag = "invitations",
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath((raw_id, invitation_id)): AppPath<(String, String)>,
) -> Result<NoContent, ApiError> {
    let id = parse_tenant_id(&raw_id)?;
    ensure_member(&user, &id)?;
    user.require(Resource::Invitations, Action::Delete)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.platform().await?;
    let invitation = repo::invitation_by_id(&tx, &id, &invitation_id).await?.ok_or_else(|| ApiError::not_found("invitation"))?;
    match invitation.status.as_str() {
        "accepted" => return Err(ApiError::conflict("INVITATION_NOT_PENDING", "the invitation was already accepted")),
        "revoked" => {}
        _ => {
            repo::revoke_invitation(&tx, &id, &invitation_id).await?;
        }
    }
    tx.commit().await?;
    Ok(NoContent)
}

/// The invitation behind a token, without the token (for the registration page).
#[utoipa::path(get, path = "/api/v1/invitations/{token}", tag = "invitations",
    responses((status = 200, body = InvitationInfo), (status = 404)))]
pub async fn invitation_by_token(State(state): State<AppState>, AppPath(token): AppPath<String>) -> Result<AppJson<InvitationInfo>, ApiError> {
    let mut conn = state.db.connect().await?;
    let tx = conn.platform().await?;
    let invitation = repo::invitation_by_token(&tx, &hash_token(&token)).await?.ok_or_else(|| ApiError::not_found("invitation"))?;
    tx.commit().await?;
    Ok(AppJson(invitation))
}

/// Accept an invitation (auth-service, with a service token of the invitation's tenant).
#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", request_body = AcceptInvitation, tag = "invitations",
    responses((status = 200, body = InvitationInfo), (status = 403), (status = 404), (status = 409), (status = 410)))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(token): AppPath<String>,
    AppJson(body): AppJson<AcceptInvitation>,
) -> Result<AppJson<InvitationInfo>, ApiError> {
    if user.role != Role::Service {
        return Err(ApiError::forbidden("invitations are accepted through registration"));
    }
    let user_id = body.user_id;
    let token_hash = hash_token(&token);
    let mut conn = state.db.connect().await?;
    let tx = conn.platform().await?;
    let current = repo::invitation_by_token(&tx, &token_hash).await?.ok_or_else(|| ApiError::not_found("invitation"))?;
    if current.tenant_id != user.tenant_id.to_string() {
        return Err(ApiError::not_found("invitation"));
    }
    let Some(accepted) = repo::accept_invitation(&tx, &token_hash, user_id).await? else {
        return Err(match current.status.as_str() {
            "expired" => ApiError::new(StatusCode::GONE, "INVITATION_EXPIRED", "the invitation has expired"),
            "pending" => ApiError::conflict("INVITATION_NOT_PENDING", "the invitation was accepted meanwhile"),
            other => ApiError::conflict("INVITATION_NOT_PENDING", format!("the invitation is {other}")),
        });
    };
    publish(&tx, "tenant.user_joined", &user.tenant_id, user_id.map(|u| u.to_string()), &accepted).await?;
    tx.commit().await?;
    Ok(AppJson(accepted))
}
