//! Tenants: signup (registry row + schema + admin invitation), lookup, details, rename and
//! status change, deletion.

use axum::http::StatusCode;
use chrono::Utc;
use crm_client_tenant::subjects::{TENANT_CREATED, TENANT_DELETED, TENANT_UPDATED, TENANT_USER_INVITED};
use crm_client_tenant::{InvitationInfo, TenantBasicInfo, TenantDetails};
use crm_events::publish_platform;
use crm_tenant::DbError;
use crm_web::etag::{ETag, IfMatch};
use crm_web::{Action, ApiError, FieldErrors, PlatformOperator, Principal, Resource, Role, codes, validate};
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use utoipa::ToSchema;

use super::{ensure_member, parse_tenant_id};
use crate::AppState;
use crate::domain::{check_subdomain, new_token};
use crate::input::{NewTenant, TenantPatch};
use crate::repo::{self, InvitationInsert};

/// Open signups are counted per client IP in windows of this length.
const SIGNUP_WINDOW_SECS: i64 = 3600;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignupResponse {
    pub tenant: TenantDetails,
    /// The `admin` invitation for `admin_email`, with its token (shown this once).
    pub invitation: InvitationInfo,
}

/// TenantBasicInfo plus the status: exactly what a login page on the subdomain needs (the
/// public lookup; also the payload of the `tenant.*` events). Nothing internal.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantLookup {
    #[serde(flatten)]
    pub tenant: TenantBasicInfo,
    pub status: String,
}

fn basic(t: &TenantDetails) -> TenantBasicInfo {
    TenantBasicInfo { id: t.id.clone(), name: t.name.clone(), subdomain: t.subdomain.clone() }
}

/// Event payload of `tenant.*`: TenantBasicInfo + status.
fn lookup_of(t: &TenantDetails) -> TenantLookup {
    TenantLookup { tenant: basic(t), status: t.status.clone() }
}

fn subdomain_taken(e: DbError) -> ApiError {
    match e {
        DbError::Query(q) if q.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            ApiError::conflict(codes::SUBDOMAIN_TAKEN, "this subdomain is already taken")
        }
        e => e.into(),
    }
}

/// Signs up a tenant: registry row, schema with every service's tables, an `admin`
/// invitation and the `tenant.created` / `tenant.user_invited` events, all or nothing.
/// Without the operator: refused when signup is closed, limited per client IP.
pub async fn signup(
    state: &AppState,
    operator: Option<PlatformOperator>,
    ip: &str,
    new: NewTenant,
) -> Result<SignupResponse, ApiError> {
    let settings = &state.settings;
    if operator.is_none() {
        if !settings.signup_open {
            return Err(ApiError::new(StatusCode::FORBIDDEN, codes::SIGNUP_CLOSED, "signup is closed: ask the platform operator"));
        }
        // Its own transaction, committed even when refusing: refused attempts count.
        let tx = state.db.platform().await?;
        let (hits, retry_after) = repo::count_hit(&tx, &format!("signup:{ip}"), SIGNUP_WINDOW_SECS).await?;
        tx.commit().await?;
        if hits > settings.signup_per_ip_per_hour {
            tracing::info!(security_event = "signup_rate_limited", ip, "signup rate limit reached");
            return Err(ApiError::too_many_requests(retry_after as u64));
        }
    }

    let mut errors = FieldErrors::new();
    let name = validate::text(&mut errors, "name", &new.name, 255);
    let subdomain = check_subdomain(&mut errors, &new.subdomain);
    let admin_email = validate::email(&mut errors, "admin_email", &new.admin_email);
    errors.into_result()?;

    let (token, token_hash) = new_token();
    let actor = Some(if operator.is_some() { "platform_operator" } else { "signup" }.to_owned());
    let tx = state.db.platform().await?;
    let spare = if settings.spare_schemas > 0 { repo::take_spare(&tx).await? } else { None };
    let id = spare.unwrap_or_default();
    let tenant = repo::insert_tenant(&tx, &id, &name, &subdomain).await.map_err(subdomain_taken)?;
    let mut invitation = repo::insert_invitation(
        &tx,
        &InvitationInsert {
            id: ulid::Ulid::generate().to_string(),
            tenant_id: &id,
            email: &admin_email,
            role: Role::Admin.as_str(),
            token_hash: &token_hash,
            expires_at: Utc::now() + settings.invitation_ttl,
            invited_by: None,
        },
    )
    .await?;
    invitation.token = Some(token);
    publish_platform(&tx, &id, actor.clone(), TENANT_CREATED, lookup_of(&tenant)).await?;
    publish_platform(&tx, &id, actor, TENANT_USER_INVITED, &invitation).await?;
    // The schema (for a spare, only a check that it is current: a few cheap reads), in the
    // same transaction: the row, its events and its schema commit or vanish together.
    tx.provision_schema(&id).await?;
    tx.commit().await?;
    if spare.is_some() {
        state.spares_taken.notify_one();
    }
    tracing::info!(tenant_id = %id, subdomain, from_spare = spare.is_some(), "tenant provisioned");
    Ok(SignupResponse { tenant, invitation })
}

/// The tenant behind a subdomain (public: a login page needs it before anyone signs in).
pub async fn by_subdomain(state: &AppState, subdomain: &str) -> Result<TenantLookup, ApiError> {
    let tx = state.db.platform().await?;
    let tenant = repo::tenant_by_subdomain(&tx, &subdomain.to_ascii_lowercase()).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    Ok(lookup_of(&tenant))
}

/// A tenant's details, for its members (every role reads its tenant) and the operator.
pub async fn get(state: &AppState, principal: &Principal, raw_id: &str) -> Result<TenantDetails, ApiError> {
    let id = parse_tenant_id(raw_id)?;
    if let Principal::User(user) = principal {
        ensure_member(user, &id)?;
    }
    let tx = state.db.platform().await?;
    let tenant = repo::tenant_by_id(&tx, &id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    Ok(tenant)
}

/// What other services need of a tenant; visible as [`get`].
pub async fn get_basic(state: &AppState, principal: &Principal, raw_id: &str) -> Result<TenantBasicInfo, ApiError> {
    Ok(basic(&get(state, principal, raw_id).await?))
}

/// Renames (a member with `tenant:write`) or changes the status (the operator only), and
/// publishes `tenant.updated`.
pub async fn update(
    state: &AppState,
    principal: &Principal,
    raw_id: &str,
    if_match: &IfMatch,
    patch: TenantPatch,
) -> Result<TenantDetails, ApiError> {
    let id = parse_tenant_id(raw_id)?;
    let actor = match principal {
        Principal::Operator => "platform_operator".to_owned(),
        Principal::User(user) => {
            // Membership first: another tenant's id is not found, whatever the role.
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

    let tx = state.db.platform().await?;
    let current = repo::tenant_for_update(&tx, &id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    let tenant = repo::update_tenant(&tx, &id, name.as_deref(), patch.status.as_deref()).await?;
    publish_platform(&tx, &id, Some(actor), TENANT_UPDATED, lookup_of(&tenant)).await?;
    tx.commit().await?;
    // This instance refuses a suspended tenant's tokens at once; others when the event arrives.
    state.registry.invalidate(&id);
    Ok(tenant)
}

/// Deletes a tenant with all its data (drops the schema) and publishes `tenant.deleted`.
pub async fn delete(state: &AppState, _operator: PlatformOperator, raw_id: &str, if_match: &IfMatch) -> Result<(), ApiError> {
    let id = parse_tenant_id(raw_id)?;
    let tx = state.db.platform().await?;
    let tenant = repo::tenant_for_update(&tx, &id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    if_match.check(&ETag::of(tenant.updated_at))?;
    repo::delete_tenant(&tx, &id).await?;
    publish_platform(&tx, &id, Some("platform_operator".into()), TENANT_DELETED, lookup_of(&tenant)).await?;
    tx.drop_schema(&id).await?;
    tx.commit().await?;
    state.registry.invalidate(&id);
    tracing::info!(tenant_id = %id, "tenant deleted");
    Ok(())
}
