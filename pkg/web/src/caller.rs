//! Who is calling, and what they may do: the one caller type of every service and the
//! permission extractor that puts the check into the handler's signature.
//!
//! ```ignore
//! async fn create(State(s): State<AppState>, can: Can<perm::DealsWrite>, AppJson(body): AppJson<NewDeal>) -> ... {
//!     // the role may write deals; `can.scope` says whether only its own (Scope::Own)
//!     service::create_deal(&s, &can, body).await
//! }
//! ```
//!
//! The bearer token is verified once per request (the [`AuthUser`] is cached in the
//! request's extensions), and the permission is checked once, by the extractor.

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use crm_client_core::CallContext;

use crate::auth::{AuthState, AuthUser, bearer_token};
use crate::error::ApiError;
use crate::permissions::{Action, Resource, Scope};

/// The authenticated caller: the user (id, tenant, role) and what is forwarded on their
/// behalf to other services (their bearer token and the request id), so the callee
/// authorizes and logs the call as theirs. Extracting it fails closed (401/403, see
/// [`AuthUser`]).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: AuthUser,
    pub ctx: CallContext,
}

impl Caller {
    /// A caller for work not started by an HTTP request (event consumers, jobs): the
    /// user the work is attributed to, and no token to forward.
    pub fn system(user: AuthUser) -> Self {
        let tenant = Some(user.tenant_id.to_string());
        Self { user, ctx: CallContext { bearer: None, request_id: crate::request_id::current(), tenant } }
    }
}

impl Deref for Caller {
    type Target = AuthUser;
    fn deref(&self) -> &AuthUser {
        &self.user
    }
}

impl<S> FromRequestParts<S> for Caller
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let bearer = bearer_token(&parts.headers)?.map(str::to_owned);
        // The verified tenant keys the name caches of the typed clients (crm_client_core::names).
        let tenant = Some(user.tenant_id.to_string());
        Ok(Self { user, ctx: CallContext { bearer, request_id: crate::request_id::current(), tenant } })
    }
}

/// A permission of the matrix (`pkg/web/PERMISSIONS.md`) as a type, for [`Can`].
pub trait Permission: Send + Sync + 'static {
    const RESOURCE: Resource;
    const ACTION: Action;
}

/// Proof that the caller's role may do `P`'s action on `P`'s resource, with the scope it
/// may do it in ([`Scope::All`] or [`Scope::Own`]; never `None`). Rejects with 401 (no or
/// bad token) or 403 `FORBIDDEN` before the handler runs. Derefs to [`Caller`].
#[derive(Debug, Clone)]
pub struct Can<P> {
    pub caller: Caller,
    pub scope: Scope,
    _permission: PhantomData<P>,
}

impl<P> Can<P> {
    /// Whether a row owned by any of `owners` is within the scope.
    pub fn reaches(&self, owners: impl IntoIterator<Item = Option<i32>>) -> bool {
        self.caller.user.can_touch_any(self.scope, owners)
    }

    /// The owner to filter lists by: `Some(caller)` with [`Scope::Own`], `None` with all.
    pub fn owner_filter(&self) -> Option<i32> {
        (self.scope == Scope::Own).then_some(self.caller.user.user_id)
    }
}

impl<P> Deref for Can<P> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<S, P> FromRequestParts<S> for Can<P>
where
    AuthState: FromRef<S>,
    S: Send + Sync,
    P: Permission,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let scope = caller.user.require(P::RESOURCE, P::ACTION)?;
        Ok(Self { caller, scope, _permission: PhantomData })
    }
}

/// The permissions as types: `perm::ContactsRead`, `perm::DealsWrite`, ...
pub mod perm {
    use super::{Action, Permission, Resource};

    macro_rules! permissions {
        ($($resource:ident { $read:ident, $write:ident, $delete:ident })*) => {$(
            #[doc = concat!("Read ", stringify!($resource), ".")]
            #[derive(Debug, Clone, Copy)]
            pub struct $read;
            impl Permission for $read {
                const RESOURCE: Resource = Resource::$resource;
                const ACTION: Action = Action::Read;
            }
            #[doc = concat!("Create and update ", stringify!($resource), ".")]
            #[derive(Debug, Clone, Copy)]
            pub struct $write;
            impl Permission for $write {
                const RESOURCE: Resource = Resource::$resource;
                const ACTION: Action = Action::Write;
            }
            #[doc = concat!("Delete ", stringify!($resource), ".")]
            #[derive(Debug, Clone, Copy)]
            pub struct $delete;
            impl Permission for $delete {
                const RESOURCE: Resource = Resource::$resource;
                const ACTION: Action = Action::Delete;
            }
        )*};
    }

    permissions! {
        Tenant { TenantRead, TenantWrite, TenantDelete }
        Invitations { InvitationsRead, InvitationsWrite, InvitationsDelete }
        Users { UsersRead, UsersWrite, UsersDelete }
        Companies { CompaniesRead, CompaniesWrite, CompaniesDelete }
        Contacts { ContactsRead, ContactsWrite, ContactsDelete }
        Deals { DealsRead, DealsWrite, DealsDelete }
        PipelineStages { PipelineStagesRead, PipelineStagesWrite, PipelineStagesDelete }
        Activities { ActivitiesRead, ActivitiesWrite, ActivitiesDelete }
        Tasks { TasksRead, TasksWrite, TasksDelete }
        EmailTemplates { EmailTemplatesRead, EmailTemplatesWrite, EmailTemplatesDelete }
        Emails { EmailsRead, EmailsWrite, EmailsDelete }
        Reports { ReportsRead, ReportsWrite, ReportsDelete }
        Webhooks { WebhooksRead, WebhooksWrite, WebhooksDelete }
        Automation { AutomationRead, AutomationWrite, AutomationDelete }
        Audit { AuditRead, AuditWrite, AuditDelete }
    }
}
