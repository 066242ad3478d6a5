use async_trait::async_trait;
use crm_client_core::{CallContext, ClientConfig, ClientError, HttpClient, ids_query};

use crate::{CompanyBasicInfo, CompanyBatch, CompanyDetails, ContactBasicInfo, ContactBatch, ContactDetails, ContactLookup};

/// Most ids one batch lookup takes (API.md); larger lists are split.
pub const MAX_BATCH: usize = 500;

/// What other services ask of contact-service. Batch lookups return the ids that exist in
/// the caller's tenant (unknown ids are simply absent).
#[async_trait]
pub trait ContactClient: Send + Sync {
    async fn company_basic(&self, ctx: &CallContext, id: i32) -> Result<CompanyBasicInfo, ClientError>;
    async fn companies_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<CompanyBasicInfo>, ClientError>;
    async fn company(&self, ctx: &CallContext, id: i32) -> Result<CompanyDetails, ClientError>;
    async fn contact_basic(&self, ctx: &CallContext, id: i32) -> Result<ContactBasicInfo, ClientError>;
    async fn contacts_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<ContactBasicInfo>, ClientError>;
    async fn contact(&self, ctx: &CallContext, id: i32) -> Result<ContactDetails, ClientError>;
    /// `PATCH /contacts/{id}` with `fields` (automation rules' `update_field`), as the
    /// caller. Implementations without writes refuse it.
    async fn update_contact_fields(&self, _ctx: &CallContext, _id: i32, _fields: &serde_json::Value) -> Result<ContactDetails, ClientError> {
        Err(ClientError::Invalid { status: 501, code: "NOT_IMPLEMENTED".into(), message: "this client does not update contacts".into() })
    }
    /// Contacts and companies for one list (e.g. deal enrichment): the HTTP client makes a
    /// single request (`GET /contacts/basic?ids=..&company_ids=..`) when both are wanted.
    async fn contacts_and_companies_basic(
        &self,
        ctx: &CallContext,
        contact_ids: &[i32],
        company_ids: &[i32],
    ) -> Result<(Vec<ContactBasicInfo>, Vec<CompanyBasicInfo>), ClientError> {
        let contacts = if contact_ids.is_empty() { Vec::new() } else { self.contacts_basic(ctx, contact_ids).await? };
        let companies = if company_ids.is_empty() { Vec::new() } else { self.companies_basic(ctx, company_ids).await? };
        Ok((contacts, companies))
    }
}

/// The reqwest implementation (`CONTACT_SERVICE_URL`, default http://127.0.0.1:8082).
pub struct HttpContactClient {
    http: HttpClient,
}

impl HttpContactClient {
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
impl ContactClient for HttpContactClient {
    async fn company_basic(&self, ctx: &CallContext, id: i32) -> Result<CompanyBasicInfo, ClientError> {
        self.http.get(ctx, &format!("/api/v1/companies/{id}/basic")).await
    }

    async fn companies_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<CompanyBasicInfo>, ClientError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in batches(ids) {
            let batch: CompanyBatch = self.http.get(ctx, &format!("/api/v1/companies/basic?ids={}", ids_query(&chunk))).await?;
            found.extend(batch.data);
        }
        Ok(found)
    }

    async fn company(&self, ctx: &CallContext, id: i32) -> Result<CompanyDetails, ClientError> {
        self.http.get(ctx, &format!("/api/v1/companies/{id}")).await
    }

    async fn contact_basic(&self, ctx: &CallContext, id: i32) -> Result<ContactBasicInfo, ClientError> {
        self.http.get(ctx, &format!("/api/v1/contacts/{id}/basic")).await
    }

    async fn contacts_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<ContactBasicInfo>, ClientError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in batches(ids) {
            let batch: ContactBatch = self.http.get(ctx, &format!("/api/v1/contacts/basic?ids={}", ids_query(&chunk))).await?;
            found.extend(batch.data);
        }
        Ok(found)
    }

    async fn contact(&self, ctx: &CallContext, id: i32) -> Result<ContactDetails, ClientError> {
        self.http.get(ctx, &format!("/api/v1/contacts/{id}")).await
    }

    async fn update_contact_fields(&self, ctx: &CallContext, id: i32, fields: &serde_json::Value) -> Result<ContactDetails, ClientError> {
        self.http.patch(ctx, &format!("/api/v1/contacts/{id}"), fields).await
    }

    async fn contacts_and_companies_basic(
        &self,
        ctx: &CallContext,
        contact_ids: &[i32],
        company_ids: &[i32],
    ) -> Result<(Vec<ContactBasicInfo>, Vec<CompanyBasicInfo>), ClientError> {
        let (contacts, companies) = (batches(contact_ids), batches(company_ids));
        let ([contacts], [companies]) = (contacts.as_slice(), companies.as_slice()) else {
            // Nothing of one kind, or more than one batch: separate requests.
            let contacts = if contact_ids.is_empty() { Vec::new() } else { self.contacts_basic(ctx, contact_ids).await? };
            let companies = if company_ids.is_empty() { Vec::new() } else { self.companies_basic(ctx, company_ids).await? };
            return Ok((contacts, companies));
        };
        let path = format!("/api/v1/contacts/basic?ids={}&company_ids={}", ids_query(contacts), ids_query(companies));
        let lookup: ContactLookup = self.http.get(ctx, &path).await?;
        let companies = match lookup.companies {
            Some(found) => found,
            None => self.companies_basic(ctx, companies).await?,
        };
        Ok((lookup.data, companies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_dedupe_and_split() {
        let ids: Vec<i32> = (1..=1001).chain([1, 2]).collect();
        let b = batches(&ids);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![500, 500, 1]);
        assert_eq!(b[0][0], 1);
        assert_eq!(b[2], vec![1001]);
    }

    #[tokio::test]
    async fn an_unreachable_service_is_unavailable() {
        let client = HttpContactClient::new(ClientConfig::new("http://127.0.0.1:9"));
        let err = client.contacts_basic(&CallContext::default(), &[1]).await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)), "{err}");
    }
}
