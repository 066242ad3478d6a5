//! [`CachedDealClient`]: deals' basic records cached per tenant (`crm_client_core::names`).

use std::sync::Arc;

use async_trait::async_trait;
use crm_client_core::names::{NameCache, NameKind, NameScopes, in_order};
use crm_client_core::{CallContext, ClientError};

use crate::{DealBasicInfo, DealClient, DealResponse};

/// A [`DealClient`] that answers `deal_basic`/`deals_basic` from a per-tenant cache and asks
/// `inner` only for the ids it does not hold (one request for all of them). Entries are
/// dropped by `deal.*` events of their tenant (every change of title, stage or value
/// publishes one) and expire after the TTL. `deal` (the full record) is passed through.
pub struct CachedDealClient<C> {
    inner: C,
    deals: NameCache<DealBasicInfo>,
}

impl<C: DealClient> CachedDealClient<C> {
    pub fn new(inner: C, scopes: Arc<NameScopes>) -> Self {
        Self { inner, deals: NameCache::new(NameKind::Deal, scopes) }
    }
}

#[async_trait]
impl<C: DealClient> DealClient for CachedDealClient<C> {
    async fn deal_basic(&self, ctx: &CallContext, id: i32) -> Result<DealBasicInfo, ClientError> {
        let lookup = self.deals.lookup(ctx, &[id]);
        if let Some(found) = lookup.found.into_iter().next() {
            return Ok(found);
        }
        let deal = self.inner.deal_basic(ctx, id).await?;
        self.deals.store(lookup.scope.as_ref(), [&deal], |d| d.id);
        Ok(deal)
    }

    async fn deals_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<DealBasicInfo>, ClientError> {
        let mut lookup = self.deals.lookup(ctx, ids);
        if !lookup.missing.is_empty() {
            let fetched = self.inner.deals_basic(ctx, &lookup.missing).await?;
            self.deals.store(lookup.scope.as_ref(), &fetched, |d| d.id);
            lookup.found.extend(fetched);
        }
        Ok(in_order(ids, lookup.found, |d| d.id))
    }

    async fn deal(&self, ctx: &CallContext, id: i32) -> Result<DealResponse, ClientError> {
        self.inner.deal(ctx, id).await
    }

    /// Passed through (the change's `deal.*` event drops the cached record).
    async fn update_deal_fields(&self, ctx: &CallContext, id: i32, fields: &serde_json::Value) -> Result<DealResponse, ClientError> {
        self.inner.update_deal_fields(ctx, id, fields).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crm_client_core::names::NameCacheConfig;

    #[derive(Default)]
    struct Fake {
        deals: Mutex<Vec<DealBasicInfo>>,
        calls: Mutex<usize>,
    }

    #[async_trait]
    impl DealClient for Fake {
        async fn deal_basic(&self, ctx: &CallContext, id: i32) -> Result<DealBasicInfo, ClientError> {
            self.deals_basic(ctx, &[id]).await?.pop().ok_or(ClientError::NotFound)
        }
        async fn deals_basic(&self, _: &CallContext, ids: &[i32]) -> Result<Vec<DealBasicInfo>, ClientError> {
            *self.calls.lock().unwrap() += 1;
            Ok(self.deals.lock().unwrap().iter().filter(|d| ids.contains(&d.id)).cloned().collect())
        }
        async fn deal(&self, _: &CallContext, _: i32) -> Result<DealResponse, ClientError> {
            Err(ClientError::NotFound)
        }
    }

    fn deal(id: i32, stage: &str) -> DealBasicInfo {
        DealBasicInfo { id, title: format!("Deal {id}"), stage: stage.into(), value: 10.0 }
    }

    #[tokio::test]
    async fn a_stage_change_event_makes_the_next_lookup_ask_again() {
        let scopes = NameScopes::new(NameCacheConfig::default());
        scopes.set_live(true);
        let client = CachedDealClient::new(Fake { deals: Mutex::new(vec![deal(1, "lead"), deal(2, "lead")]), ..Fake::default() }, scopes.clone());
        let t = CallContext::new("token").with_tenant("t");
        assert_eq!(client.deals_basic(&t, &[2, 1]).await.unwrap().iter().map(|d| d.id).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(client.deal_basic(&t, 1).await.unwrap().stage, "lead");
        assert_eq!(*client.inner.calls.lock().unwrap(), 1);
        client.inner.deals.lock().unwrap()[0].stage = "proposal".into();
        scopes.apply("deal.stage_changed", Some("t"));
        assert_eq!(client.deal_basic(&t, 1).await.unwrap().stage, "proposal");
        assert_eq!(*client.inner.calls.lock().unwrap(), 2);
    }
}
