use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use crm_client_core::{CallContext, ClientError};

use crate::{CompanyBasicInfo, CompanyDetails, ContactBasicInfo, ContactClient, ContactDetails};

/// In-memory stand-in for other services' unit tests. Counts calls so a test can check that
/// enrichment is batched (one call per list page, not per row).
#[derive(Default)]
pub struct MockContactClient {
    pub companies: Mutex<HashMap<i32, CompanyDetails>>,
    pub contacts: Mutex<HashMap<i32, ContactDetails>>,
    /// When set, every call fails with this error (e.g. `Unavailable`).
    pub fail_with: Mutex<Option<ClientError>>,
    pub calls: Mutex<usize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MockContactClient {
    pub fn with_company(self, company: CompanyDetails) -> Self {
        lock(&self.companies).insert(company.id, company);
        self
    }

    pub fn with_contact(self, contact: ContactDetails) -> Self {
        lock(&self.contacts).insert(contact.id, contact);
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
impl ContactClient for MockContactClient {
    async fn company_basic(&self, ctx: &CallContext, id: i32) -> Result<CompanyBasicInfo, ClientError> {
        self.company(ctx, id).await.map(|c| c.basic())
    }

    async fn companies_basic(&self, _: &CallContext, ids: &[i32]) -> Result<Vec<CompanyBasicInfo>, ClientError> {
        self.enter()?;
        let companies = lock(&self.companies);
        Ok(ids.iter().filter_map(|id| companies.get(id).map(CompanyDetails::basic)).collect())
    }

    async fn company(&self, _: &CallContext, id: i32) -> Result<CompanyDetails, ClientError> {
        self.enter()?;
        lock(&self.companies).get(&id).cloned().ok_or(ClientError::NotFound)
    }

    async fn contact_basic(&self, ctx: &CallContext, id: i32) -> Result<ContactBasicInfo, ClientError> {
        self.contact(ctx, id).await.map(|c| c.basic())
    }

    async fn contacts_basic(&self, _: &CallContext, ids: &[i32]) -> Result<Vec<ContactBasicInfo>, ClientError> {
        self.enter()?;
        let contacts = lock(&self.contacts);
        Ok(ids.iter().filter_map(|id| contacts.get(id).map(ContactDetails::basic)).collect())
    }

    async fn contact(&self, _: &CallContext, id: i32) -> Result<ContactDetails, ClientError> {
        self.enter()?;
        lock(&self.contacts).get(&id).cloned().ok_or(ClientError::NotFound)
    }

    /// Merges `fields` into the stored contact (no validation beyond the types).
    async fn update_contact_fields(&self, _: &CallContext, id: i32, fields: &serde_json::Value) -> Result<ContactDetails, ClientError> {
        self.enter()?;
        let mut contacts = lock(&self.contacts);
        let current = contacts.get(&id).ok_or(ClientError::NotFound)?;
        let mut value = serde_json::to_value(current).map_err(|e| ClientError::Unavailable(e.to_string()))?;
        if let (Some(target), Some(changes)) = (value.as_object_mut(), fields.as_object()) {
            target.extend(changes.clone());
        }
        let updated: ContactDetails = serde_json::from_value(value).map_err(|e| ClientError::Invalid { status: 400, code: "VALIDATION_FAILED".into(), message: e.to_string() })?;
        contacts.insert(id, updated.clone());
        Ok(updated)
    }

    async fn contacts_and_companies_basic(
        &self,
        _: &CallContext,
        contact_ids: &[i32],
        company_ids: &[i32],
    ) -> Result<(Vec<ContactBasicInfo>, Vec<CompanyBasicInfo>), ClientError> {
        self.enter()?;
        let contacts = lock(&self.contacts);
        let companies = lock(&self.companies);
        Ok((
            contact_ids.iter().filter_map(|id| contacts.get(id).map(ContactDetails::basic)).collect(),
            company_ids.iter().filter_map(|id| companies.get(id).map(CompanyDetails::basic)).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batch_lookups_count_one_call_and_skip_unknown_ids() {
        let now = chrono::Utc::now();
        let mock = MockContactClient::default().with_company(CompanyDetails {
            id: 7,
            name: "Acme".into(),
            domain: String::new(),
            industry: String::new(),
            size_category: String::new(),
            parent_company_id: None,
            address: Default::default(),
            phone: String::new(),
            website: String::new(),
            custom_fields: Default::default(),
            tags: vec![],
            created_at: now,
            created_by: 1,
            updated_at: now,
        });
        let ctx = CallContext::default();
        let found = mock.companies_basic(&ctx, &[7, 8]).await.unwrap();
        assert_eq!(found, vec![CompanyBasicInfo { id: 7, name: "Acme".into() }]);
        assert_eq!(mock.calls(), 1);
        assert!(matches!(mock.contact_basic(&ctx, 1).await, Err(ClientError::NotFound)));
        *mock.fail_with.lock().unwrap() = Some(ClientError::Unavailable("down".into()));
        assert!(mock.companies_basic(&ctx, &[7]).await.is_err());
    }
}
