use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use crm_client_core::{CallContext, ClientError};

use crate::{DealBasicInfo, DealClient, DealResponse};

/// In-memory stand-in for other services' unit tests. Counts calls so a test can check that
/// lookups are batched.
#[derive(Default)]
pub struct MockDealClient {
    pub deals: Mutex<HashMap<i32, DealResponse>>,
    /// When set, every call fails with this error (e.g. `Unavailable`).
    pub fail_with: Mutex<Option<ClientError>>,
    pub calls: Mutex<usize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MockDealClient {
    pub fn with_deal(self, deal: DealResponse) -> Self {
        lock(&self.deals).insert(deal.id, deal);
        self
    }

    pub fn calls(&self) -> usize {
        *lock(&self.calls)
    }

    fn enter(&self) -> Result<(), ClientError> {
        *lock(&self.calls) += 1;
        match lock(&self.fail_with).clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl DealClient for MockDealClient {
    async fn deal_basic(&self, ctx: &CallContext, id: i32) -> Result<DealBasicInfo, ClientError> {
        self.deal(ctx, id).await.map(|d| d.basic())
    }

    async fn deals_basic(&self, _: &CallContext, ids: &[i32]) -> Result<Vec<DealBasicInfo>, ClientError> {
        self.enter()?;
        let deals = lock(&self.deals);
        Ok(ids.iter().filter_map(|id| deals.get(id).map(DealResponse::basic)).collect())
    }

    async fn deal(&self, _: &CallContext, id: i32) -> Result<DealResponse, ClientError> {
        self.enter()?;
        lock(&self.deals).get(&id).cloned().ok_or(ClientError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batch_lookup_is_one_call_and_skips_unknown_ids() {
        let now = chrono::Utc::now();
        let deal = DealResponse {
            id: 7,
            title: "Renewal".into(),
            value: None,
            currency: "EUR".into(),
            probability: 10,
            stage: "lead".into(),
            primary_contact_id: None,
            company_id: None,
            owner_id: None,
            expected_close_date: None,
            actual_close_date: None,
            deal_source: None,
            description: None,
            close_reason: None,
            custom_fields: Default::default(),
            created_at: now,
            updated_at: now,
            created_by: None,
            primary_contact_name: None,
            company_name: None,
            owner_name: None,
            deal_age_days: 0,
            days_until_close: None,
            weighted_value: None,
            stage_history: None,
        };
        let mock = MockDealClient::default().with_deal(deal);
        let ctx = CallContext::default();
        let found = mock.deals_basic(&ctx, &[7, 8]).await.unwrap();
        assert_eq!(found, vec![DealBasicInfo { id: 7, title: "Renewal".into(), stage: "lead".into(), value: 0.0 }]);
        assert_eq!(mock.calls(), 1);
        assert!(matches!(mock.deal_basic(&ctx, 1).await, Err(ClientError::NotFound)));
        *mock.fail_with.lock().unwrap() = Some(ClientError::Unavailable("down".into()));
        assert!(mock.deals_basic(&ctx, &[7]).await.is_err());
    }
}
