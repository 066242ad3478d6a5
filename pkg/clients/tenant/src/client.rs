use async_trait::async_trait;
use crm_client_core::{CallContext, ClientConfig, ClientError, HttpClient};

use crate::{AcceptInvitation, InvitationInfo, TenantBasicInfo, TenantSettings};

/// What other services ask of tenant-service.
#[async_trait]
pub trait TenantClient: Send + Sync {
    async fn basic_info(&self, ctx: &CallContext, tenant_id: &str) -> Result<TenantBasicInfo, ClientError>;
    async fn by_subdomain(&self, ctx: &CallContext, subdomain: &str) -> Result<TenantBasicInfo, ClientError>;
    /// The invitation behind a token (no token in the answer). Expired and accepted ones
    /// are returned with that status.
    async fn invitation(&self, ctx: &CallContext, token: &str) -> Result<InvitationInfo, ClientError>;
    /// Marks the invitation accepted, exactly once (a second call: `Invalid` with 409).
    async fn accept_invitation(&self, ctx: &CallContext, token: &str, user_id: Option<i32>)
    -> Result<InvitationInfo, ClientError>;
    /// The tenant's settings (`GET /tenants/{id}/settings`; any member's or a service token
    /// of the tenant). Callers cache the answer briefly (at most 60 s) or read it per job run.
    async fn settings(&self, ctx: &CallContext, tenant_id: &str) -> Result<TenantSettings, ClientError>;
}

/// The reqwest implementation (`TENANT_SERVICE_URL`, default http://127.0.0.1:8081).
pub struct HttpTenantClient {
    http: HttpClient,
}

impl HttpTenantClient {
    pub fn new(config: ClientConfig) -> Self {
        Self { http: HttpClient::new(config) }
    }
}

/// Path segments come from callers' input (subdomains, tokens): keep them one segment.
fn segment(s: &str) -> Result<&str, ClientError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(s)
    } else {
        Err(ClientError::NotFound)
    }
}

#[async_trait]
impl TenantClient for HttpTenantClient {
    async fn basic_info(&self, ctx: &CallContext, tenant_id: &str) -> Result<TenantBasicInfo, ClientError> {
        self.http.get(ctx, &format!("/api/v1/tenants/{}/basic", segment(tenant_id)?)).await
    }

    async fn by_subdomain(&self, ctx: &CallContext, subdomain: &str) -> Result<TenantBasicInfo, ClientError> {
        self.http.get(ctx, &format!("/api/v1/tenants/by-subdomain/{}", segment(subdomain)?)).await
    }

    async fn invitation(&self, ctx: &CallContext, token: &str) -> Result<InvitationInfo, ClientError> {
        self.http.get(ctx, &format!("/api/v1/invitations/{}", segment(token)?)).await
    }

    async fn accept_invitation(
        &self,
        ctx: &CallContext,
        token: &str,
        user_id: Option<i32>,
    ) -> Result<InvitationInfo, ClientError> {
        self.http
            .post(ctx, &format!("/api/v1/invitations/{}/accept", segment(token)?), &AcceptInvitation { user_id })
            .await
    }

    async fn settings(&self, ctx: &CallContext, tenant_id: &str) -> Result<TenantSettings, ClientError> {
        self.http.get(ctx, &format!("/api/v1/tenants/{}/settings", segment(tenant_id)?)).await
    }
}
