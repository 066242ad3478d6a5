use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use crm_client_core::{CallContext, ClientError};

use crate::{InvitationInfo, TenantBasicInfo, TenantClient, TenantSettings};

/// In-memory stand-in for other services' unit tests.
#[derive(Default)]
pub struct MockTenantClient {
    pub tenants: Mutex<Vec<TenantBasicInfo>>,
    /// token -> invitation
    pub invitations: Mutex<HashMap<String, InvitationInfo>>,
    /// tenant id -> settings; a tenant without an entry has the defaults.
    pub settings: Mutex<HashMap<String, TenantSettings>>,
    /// When set, every call fails with this error (e.g. `Unavailable`).
    pub fail_with: Mutex<Option<ClientError>>,
}

impl MockTenantClient {
    pub fn with_tenant(self, tenant: TenantBasicInfo) -> Self {
        self.tenants.lock().unwrap_or_else(|e| e.into_inner()).push(tenant);
        self
    }

    pub fn with_invitation(self, token: &str, invitation: InvitationInfo) -> Self {
        self.invitations.lock().unwrap_or_else(|e| e.into_inner()).insert(token.to_owned(), invitation);
        self
    }

    pub fn with_settings(self, tenant_id: &str, settings: TenantSettings) -> Self {
        self.settings.lock().unwrap_or_else(|e| e.into_inner()).insert(tenant_id.to_owned(), settings);
        self
    }

    fn fail(&self) -> Result<(), ClientError> {
        match self.fail_with.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn find(&self, pred: impl Fn(&TenantBasicInfo) -> bool) -> Result<TenantBasicInfo, ClientError> {
        self.fail()?;
        self.tenants.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|t| pred(t)).cloned().ok_or(ClientError::NotFound)
    }
}

#[async_trait]
impl TenantClient for MockTenantClient {
    async fn basic_info(&self, _: &CallContext, tenant_id: &str) -> Result<TenantBasicInfo, ClientError> {
        self.find(|t| t.id.eq_ignore_ascii_case(tenant_id))
    }

    async fn by_subdomain(&self, _: &CallContext, subdomain: &str) -> Result<TenantBasicInfo, ClientError> {
        self.find(|t| t.subdomain.eq_ignore_ascii_case(subdomain))
    }

    async fn invitation(&self, _: &CallContext, token: &str) -> Result<InvitationInfo, ClientError> {
        self.fail()?;
        let invitations = self.invitations.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = invitations.get(token).cloned().ok_or(ClientError::NotFound)?;
        found.token = None;
        Ok(found)
    }

    async fn accept_invitation(&self, _: &CallContext, token: &str, _: Option<i32>) -> Result<InvitationInfo, ClientError> {
        self.fail()?;
        let mut invitations = self.invitations.lock().unwrap_or_else(|e| e.into_inner());
        let invitation = invitations.get_mut(token).ok_or(ClientError::NotFound)?;
        if invitation.status != "pending" {
            return Err(ClientError::Invalid {
                status: 409,
                code: "INVITATION_NOT_PENDING".into(),
                message: format!("invitation is {}", invitation.status),
            });
        }
        invitation.status = "accepted".into();
        let mut answer = invitation.clone();
        answer.token = None;
        Ok(answer)
    }

    async fn settings(&self, _: &CallContext, tenant_id: &str) -> Result<TenantSettings, ClientError> {
        self.fail()?;
        Ok(self.settings.lock().unwrap_or_else(|e| e.into_inner()).get(tenant_id).cloned().unwrap_or_default())
    }
}
