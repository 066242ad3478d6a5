//! [`CachedAuthClient`]: users' basic records cached per tenant (`crm_client_core::names`).

use std::sync::Arc;

use async_trait::async_trait;
use crm_client_core::names::{NameCache, NameKind, NameScopes, in_order};

use super::{AuthClient, CallContext, ClientError, UserBasicInfo, UserDetails};

/// An [`AuthClient`] that answers `user_basic`/`users_basic` from a per-tenant cache and asks
/// `inner` only for the ids it does not hold (one request for all of them). Entries are
/// dropped by `user.*` events of their tenant (see [`NameScopes::follow`]) and expire after
/// the TTL. `user_by_email` is passed through uncached.
pub struct CachedAuthClient<C> {
    inner: C,
    users: NameCache<UserBasicInfo>,
}

impl<C: AuthClient> CachedAuthClient<C> {
    pub fn new(inner: C, scopes: Arc<NameScopes>) -> Self {
        Self { inner, users: NameCache::new(NameKind::User, scopes) }
    }
}

#[async_trait]
impl<C: AuthClient> AuthClient for CachedAuthClient<C> {
    async fn user_basic(&self, ctx: &CallContext, id: i32) -> Result<UserBasicInfo, ClientError> {
        let lookup = self.users.lookup(ctx, &[id]);
        if let Some(user) = lookup.found.into_iter().next() {
            return Ok(user);
        }
        let user = self.inner.user_basic(ctx, id).await?;
        self.users.store(lookup.scope.as_ref(), [&user], |u| u.id);
        Ok(user)
    }

    async fn users_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<UserBasicInfo>, ClientError> {
        let mut lookup = self.users.lookup(ctx, ids);
        if lookup.missing.is_empty() {
            return Ok(in_order(ids, lookup.found, |u| u.id));
        }
        let fetched = self.inner.users_basic(ctx, &lookup.missing).await?;
        self.users.store(lookup.scope.as_ref(), &fetched, |u| u.id);
        lookup.found.extend(fetched);
        Ok(in_order(ids, lookup.found, |u| u.id))
    }

    async fn user_by_email(&self, ctx: &CallContext, email: &str) -> Result<UserDetails, ClientError> {
        self.inner.user_by_email(ctx, email).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockAuthClient;
    use crm_client_core::names::NameCacheConfig;

    fn user(id: i32, first: &str) -> UserBasicInfo {
        UserBasicInfo { id, email: format!("u{id}@x.example"), first_name: first.into(), last_name: "Doe".into(), role: "admin".into() }
    }

    fn calls(mock: &MockAuthClient) -> usize {
        *mock.calls.lock().unwrap()
    }

    fn ctx(tenant: &str) -> CallContext {
        CallContext::new("token").with_tenant(tenant)
    }

    #[tokio::test]
    async fn a_warm_lookup_makes_no_call_and_a_cold_one_asks_only_for_what_is_missing() {
        let scopes = NameScopes::new(NameCacheConfig::default());
        scopes.set_live(true);
        let client = CachedAuthClient::new(MockAuthClient::default().with_user(user(1, "Ada")).with_user(user(2, "Bo")), scopes.clone());
        let t = ctx("t");
        assert_eq!(client.users_basic(&t, &[1]).await.unwrap(), vec![user(1, "Ada")]);
        assert_eq!(calls(&client.inner), 1);
        assert_eq!(client.user_basic(&t, 1).await.unwrap(), user(1, "Ada"));
        assert_eq!(client.users_basic(&t, &[1, 1]).await.unwrap(), vec![user(1, "Ada")]);
        assert_eq!(calls(&client.inner), 1, "warm: no call");
        // 1 cached, 2 missing, 3 unknown: one call, answers in the caller's order.
        let both = client.users_basic(&t, &[2, 3, 1]).await.unwrap();
        assert_eq!(both, vec![user(2, "Bo"), user(1, "Ada")]);
        assert_eq!(calls(&client.inner), 2);
        // Unknown ids are not cached (a user created later is found).
        client.inner.users.lock().unwrap().insert(3, user(3, "Cy"));
        assert_eq!(client.users_basic(&t, &[3]).await.unwrap(), vec![user(3, "Cy")]);
        assert_eq!(calls(&client.inner), 3);
    }

    #[tokio::test]
    async fn a_rename_event_makes_the_next_lookup_see_the_new_name() {
        let scopes = NameScopes::new(NameCacheConfig::default());
        scopes.set_live(true);
        let client = CachedAuthClient::new(MockAuthClient::default().with_user(user(1, "Ada")), scopes.clone());
        let t = ctx("t");
        assert_eq!(client.user_basic(&t, 1).await.unwrap().first_name, "Ada");
        client.inner.users.lock().unwrap().insert(1, user(1, "Adele"));
        assert_eq!(client.user_basic(&t, 1).await.unwrap().first_name, "Ada", "cached until the event");
        scopes.apply("user.updated", Some("t"));
        assert_eq!(client.user_basic(&t, 1).await.unwrap().first_name, "Adele");
    }

    #[tokio::test]
    async fn tenants_with_the_same_user_id_get_their_own_names() {
        let scopes = NameScopes::new(NameCacheConfig::default());
        scopes.set_live(true);
        // One mock stands in for both tenants' auth-service: swap its answer per tenant.
        let client = CachedAuthClient::new(MockAuthClient::default().with_user(user(1, "Ada of A")), scopes);
        assert_eq!(client.user_basic(&ctx("a"), 1).await.unwrap().first_name, "Ada of A");
        client.inner.users.lock().unwrap().insert(1, user(1, "Bob of B"));
        assert_eq!(client.user_basic(&ctx("b"), 1).await.unwrap().first_name, "Bob of B");
        assert_eq!(client.users_basic(&ctx("a"), &[1]).await.unwrap()[0].first_name, "Ada of A");
        assert_eq!(client.users_basic(&ctx("b"), &[1]).await.unwrap()[0].first_name, "Bob of B");
    }

    #[tokio::test]
    async fn errors_pass_through_and_are_not_cached() {
        let scopes = NameScopes::new(NameCacheConfig::default());
        scopes.set_live(true);
        let client = CachedAuthClient::new(MockAuthClient::default().with_user(user(1, "Ada")), scopes);
        *client.inner.fail_with.lock().unwrap() = Some(ClientError::Unavailable("down".into()));
        assert!(client.users_basic(&ctx("t"), &[1]).await.is_err());
        *client.inner.fail_with.lock().unwrap() = None;
        assert_eq!(client.users_basic(&ctx("t"), &[1]).await.unwrap(), vec![user(1, "Ada")]);
    }
}
