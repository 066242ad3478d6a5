use async_trait::async_trait;
use crm_client_core::{CallContext, ClientConfig, ClientError, HttpClient, ids_query};

use crate::{DealBasicInfo, DealBatch, DealResponse};

/// Most ids one batch lookup takes (API.md); larger lists are split.
pub const MAX_BATCH: usize = 500;

/// What other services ask of deal-service. Batch lookups return the ids that exist in the
/// caller's tenant (unknown ids are simply absent).
#[async_trait]
pub trait DealClient: Send + Sync {
    async fn deal_basic(&self, ctx: &CallContext, id: i32) -> Result<DealBasicInfo, ClientError>;
    async fn deals_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<DealBasicInfo>, ClientError>;
    async fn deal(&self, ctx: &CallContext, id: i32) -> Result<DealResponse, ClientError>;
    /// `PATCH /deals/{id}` with `fields` (automation rules' `update_field`), as the caller.
    /// Implementations without writes refuse it.
    async fn update_deal_fields(&self, _ctx: &CallContext, _id: i32, _fields: &serde_json::Value) -> Result<DealResponse, ClientError> {
        Err(ClientError::Invalid { status: 501, code: "NOT_IMPLEMENTED".into(), message: "this client does not update deals".into() })
    }
}

/// The reqwest implementation (`DEAL_SERVICE_URL`, default http://127.0.0.1:8083).
pub struct HttpDealClient {
    http: HttpClient,
}

impl HttpDealClient {
    pub fn new(config: ClientConfig) -> Self {
        Self { http: HttpClient::new(config) }
    }
}

/// Deduplicated, in the caller's order, split into requests of at most [`MAX_BATCH`] ids.
fn batches(ids: &[i32]) -> Vec<Vec<i32>> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    let unique: Vec<i32> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    unique.chunks(MAX_BATCH).map(<[i32]>::to_vec).collect()
}

#[async_trait]
impl DealClient for HttpDealClient {
    async fn deal_basic(&self, ctx: &CallContext, id: i32) -> Result<DealBasicInfo, ClientError> {
        self.http.get(ctx, &format!("/api/v1/deals/{id}/basic")).await
    }

    async fn deals_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<DealBasicInfo>, ClientError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in batches(ids) {
            let batch: DealBatch = self.http.get(ctx, &format!("/api/v1/deals/basic?ids={}", ids_query(&chunk))).await?;
            found.extend(batch.data);
        }
        Ok(found)
    }

    async fn deal(&self, ctx: &CallContext, id: i32) -> Result<DealResponse, ClientError> {
        self.http.get(ctx, &format!("/api/v1/deals/{id}")).await
    }

    async fn update_deal_fields(&self, ctx: &CallContext, id: i32, fields: &serde_json::Value) -> Result<DealResponse, ClientError> {
        self.http.patch(ctx, &format!("/api/v1/deals/{id}"), fields).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_dedupe_and_split() {
        let ids: Vec<i32> = (1..=501).chain([1, 2]).collect();
        let b = batches(&ids);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![500, 1]);
        assert_eq!(b[1], vec![501]);
        assert!(batches(&[]).is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_service_is_unavailable() {
        let client = HttpDealClient::new(ClientConfig::new("http://127.0.0.1:9"));
        let err = client.deals_basic(&CallContext::default(), &[1]).await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)), "{err}");
        // Nothing to look up: no request at all.
        assert!(client.deals_basic(&CallContext::default(), &[]).await.unwrap().is_empty());
    }
}
