//! [`MockAuthClient`]: the in-memory stand-in of other crates' tests (feature `mock`).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{AuthClient, CallContext, ClientError, UserBasicInfo, UserDetails};

/// In-memory stand-in for unit tests; counts calls so tests can check batching.
#[derive(Default)]
pub struct MockAuthClient {
    pub users: Mutex<HashMap<i32, UserBasicInfo>>,
    /// Users by lowercased email, for [`AuthClient::user_by_email`].
    pub by_email: Mutex<HashMap<String, UserDetails>>,
    pub fail_with: Mutex<Option<ClientError>>,
    pub calls: Mutex<usize>,
}

impl MockAuthClient {
    pub fn with_user(self, user: UserBasicInfo) -> Self {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).insert(user.id, user);
        self
    }

    pub fn with_details(self, user: UserDetails) -> Self {
        self.by_email.lock().unwrap_or_else(|e| e.into_inner()).insert(user.email.to_lowercase(), user);
        self
    }

    fn enter(&self) -> Result<(), ClientError> {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        match self.fail_with.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl AuthClient for MockAuthClient {
    async fn user_basic(&self, _: &CallContext, id: i32) -> Result<UserBasicInfo, ClientError> {
        self.enter()?;
        self.users.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned().ok_or(ClientError::NotFound)
    }

    async fn users_basic(&self, _: &CallContext, ids: &[i32]) -> Result<Vec<UserBasicInfo>, ClientError> {
        self.enter()?;
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ids.iter().filter_map(|id| users.get(id).cloned()).collect())
    }

    async fn user_by_email(&self, _: &CallContext, email: &str) -> Result<UserDetails, ClientError> {
        self.enter()?;
        self.by_email.lock().unwrap_or_else(|e| e.into_inner()).get(&email.to_lowercase()).cloned().ok_or(ClientError::NotFound)
    }
}
