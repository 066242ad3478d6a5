//! [`CachedContactClient`]: contacts' and companies' basic records cached per tenant
//! (`crm_client_core::names`).

use std::sync::Arc;

use async_trait::async_trait;
use crm_client_core::names::{NameCache, NameKind, NameScopes, in_order};
use crm_client_core::{CallContext, ClientError};

use crate::{CompanyBasicInfo, CompanyDetails, ContactBasicInfo, ContactClient, ContactDetails};

/// A [`ContactClient`] that answers the basic lookups (`contact_basic`, `contacts_basic`,
/// `company_basic`, `companies_basic`, `contacts_and_companies_basic`) from per-tenant
/// caches and asks `inner` only for what they do not hold, still in one request. Contacts
/// are dropped by `contact.*` events of their tenant (consent changes included: the basic
/// record carries `marketing_consent`), companies by `company.*`; both expire after the TTL.
/// Full records (`contact`, `company`) are passed through uncached.
pub struct CachedContactClient<C> {
    inner: C,
    contacts: NameCache<ContactBasicInfo>,
    companies: NameCache<CompanyBasicInfo>,
}

impl<C: ContactClient> CachedContactClient<C> {
    pub fn new(inner: C, scopes: Arc<NameScopes>) -> Self {
        Self {
            inner,
            contacts: NameCache::new(NameKind::Contact, scopes.clone()),
            companies: NameCache::new(NameKind::Company, scopes),
        }
    }
}

#[async_trait]
impl<C: ContactClient> ContactClient for CachedContactClient<C> {
    async fn company_basic(&self, ctx: &CallContext, id: i32) -> Result<CompanyBasicInfo, ClientError> {
        let lookup = self.companies.lookup(ctx, &[id]);
        if let Some(found) = lookup.found.into_iter().next() {
            return Ok(found);
        }
        let company = self.inner.company_basic(ctx, id).await?;
        self.companies.store(lookup.scope.as_ref(), [&company], |c| c.id);
        Ok(company)
    }

    async fn companies_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<CompanyBasicInfo>, ClientError> {
        let mut lookup = self.companies.lookup(ctx, ids);
        if !lookup.missing.is_empty() {
            let fetched = self.inner.companies_basic(ctx, &lookup.missing).await?;
            self.companies.store(lookup.scope.as_ref(), &fetched, |c| c.id);
            lookup.found.extend(fetched);
        }
        Ok(in_order(ids, lookup.found, |c| c.id))
    }

    async fn company(&self, ctx: &CallContext, id: i32) -> Result<CompanyDetails, ClientError> {
        self.inner.company(ctx, id).await
    }

    async fn contact_basic(&self, ctx: &CallContext, id: i32) -> Result<ContactBasicInfo, ClientError> {
        let lookup = self.contacts.lookup(ctx, &[id]);
        if let Some(found) = lookup.found.into_iter().next() {
            return Ok(found);
        }
        let contact = self.inner.contact_basic(ctx, id).await?;
        self.contacts.store(lookup.scope.as_ref(), [&contact], |c| c.id);
        Ok(contact)
    }

    async fn contacts_basic(&self, ctx: &CallContext, ids: &[i32]) -> Result<Vec<ContactBasicInfo>, ClientError> {
        let mut lookup = self.contacts.lookup(ctx, ids);
        if !lookup.missing.is_empty() {
            let fetched = self.inner.contacts_basic(ctx, &lookup.missing).await?;
            self.contacts.store(lookup.scope.as_ref(), &fetched, |c| c.id);
            lookup.found.extend(fetched);
        }
        Ok(in_order(ids, lookup.found, |c| c.id))
    }

    async fn contact(&self, ctx: &CallContext, id: i32) -> Result<ContactDetails, ClientError> {
        self.inner.contact(ctx, id).await
    }

    /// Passed through (the change's `contact.updated` event drops the cached record).
    async fn update_contact_fields(&self, ctx: &CallContext, id: i32, fields: &serde_json::Value) -> Result<ContactDetails, ClientError> {
        self.inner.update_contact_fields(ctx, id, fields).await
    }

    async fn contacts_and_companies_basic(
        &self,
        ctx: &CallContext,
        contact_ids: &[i32],
        company_ids: &[i32],
    ) -> Result<(Vec<ContactBasicInfo>, Vec<CompanyBasicInfo>), ClientError> {
        let mut contacts = self.contacts.lookup(ctx, contact_ids);
        let mut companies = self.companies.lookup(ctx, company_ids);
        if !contacts.missing.is_empty() || !companies.missing.is_empty() {
            let (found_contacts, found_companies) =
                self.inner.contacts_and_companies_basic(ctx, &contacts.missing, &companies.missing).await?;
            self.contacts.store(contacts.scope.as_ref(), &found_contacts, |c| c.id);
            self.companies.store(companies.scope.as_ref(), &found_companies, |c| c.id);
            contacts.found.extend(found_contacts);
            companies.found.extend(found_companies);
        }
        Ok((in_order(contact_ids, contacts.found, |c| c.id), in_order(company_ids, companies.found, |c| c.id)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crm_client_core::names::NameCacheConfig;

    /// Basic records only, built from JSON so the test does not depend on every DTO field.
    #[derive(Default)]
    struct Fake {
        contacts: Vec<ContactBasicInfo>,
        companies: Vec<CompanyBasicInfo>,
        calls: Mutex<usize>,
    }

    impl Fake {
        fn calls(&self) -> usize {
            *self.calls.lock().unwrap()
        }

        fn pick<T: Clone>(&self, all: &[T], ids: &[i32], id: impl Fn(&T) -> i32) -> Vec<T> {
            all.iter().filter(|r| ids.contains(&id(r))).cloned().collect()
        }
    }

    #[async_trait]
    impl ContactClient for Fake {
        async fn company_basic(&self, ctx: &CallContext, id: i32) -> Result<CompanyBasicInfo, ClientError> {
            self.companies_basic(ctx, &[id]).await?.pop().ok_or(ClientError::NotFound)
        }
        async fn companies_basic(&self, _: &CallContext, ids: &[i32]) -> Result<Vec<CompanyBasicInfo>, ClientError> {
            *self.calls.lock().unwrap() += 1;
            Ok(self.pick(&self.companies, ids, |c| c.id))
        }
        async fn company(&self, _: &CallContext, _: i32) -> Result<CompanyDetails, ClientError> {
            Err(ClientError::NotFound)
        }
        async fn contact_basic(&self, ctx: &CallContext, id: i32) -> Result<ContactBasicInfo, ClientError> {
            self.contacts_basic(ctx, &[id]).await?.pop().ok_or(ClientError::NotFound)
        }
        async fn contacts_basic(&self, _: &CallContext, ids: &[i32]) -> Result<Vec<ContactBasicInfo>, ClientError> {
            *self.calls.lock().unwrap() += 1;
            Ok(self.pick(&self.contacts, ids, |c| c.id))
        }
        async fn contact(&self, _: &CallContext, _: i32) -> Result<ContactDetails, ClientError> {
            Err(ClientError::NotFound)
        }
        async fn contacts_and_companies_basic(
            &self,
            _: &CallContext,
            contact_ids: &[i32],
            company_ids: &[i32],
        ) -> Result<(Vec<ContactBasicInfo>, Vec<CompanyBasicInfo>), ClientError> {
            *self.calls.lock().unwrap() += 1;
            Ok((self.pick(&self.contacts, contact_ids, |c| c.id), self.pick(&self.companies, company_ids, |c| c.id)))
        }
    }

    fn ctx(tenant: &str) -> CallContext {
        CallContext::new("token").with_tenant(tenant)
    }

    #[tokio::test]
    async fn warm_lookups_of_contacts_and_companies_make_no_call() {
        let scopes = NameScopes::new(NameCacheConfig::default());
        scopes.set_live(true);
        let contact: ContactBasicInfo =
            serde_json::from_value(serde_json::json!({"id": 3, "first_name": "Ada", "last_name": "Lovelace", "email": ""})).unwrap();
        let fake = Fake { contacts: vec![contact], companies: vec![CompanyBasicInfo { id: 5, name: "Engines".into() }], ..Fake::default() };
        let client = CachedContactClient::new(fake, scopes.clone());
        let t = ctx("t");
        let (contacts, companies) = client.contacts_and_companies_basic(&t, &[3, 4], &[5]).await.unwrap();
        assert_eq!((contacts.len(), companies.len()), (1, 1));
        assert_eq!(client.inner.calls(), 1);
        let (contacts, companies) = client.contacts_and_companies_basic(&t, &[3], &[5]).await.unwrap();
        assert_eq!(contacts[0].first_name, "Ada");
        assert_eq!(companies[0].name, "Engines");
        assert_eq!(client.contact_basic(&t, 3).await.unwrap().last_name, "Lovelace");
        assert_eq!(client.company_basic(&t, 5).await.unwrap().name, "Engines");
        assert_eq!(client.companies_basic(&t, &[5]).await.unwrap().len(), 1);
        assert_eq!(client.inner.calls(), 1, "warm: no call");
        // A company event drops companies only; a contact event (consent too) contacts only.
        scopes.apply("company.updated", Some("t"));
        client.companies_basic(&t, &[5]).await.unwrap();
        assert_eq!(client.inner.calls(), 2);
        client.contacts_basic(&t, &[3]).await.unwrap();
        assert_eq!(client.inner.calls(), 2);
        scopes.apply("contact.consent_changed", Some("t"));
        client.contacts_basic(&t, &[3]).await.unwrap();
        assert_eq!(client.inner.calls(), 3);
        // Another tenant's same ids are not served from this tenant's entries.
        client.contacts_basic(&ctx("other"), &[3]).await.unwrap();
        assert_eq!(client.inner.calls(), 4);
        // The unknown contact 4 was not cached as absent: it is asked for again.
        client.contacts_basic(&t, &[3, 4]).await.unwrap();
        assert_eq!(client.inner.calls(), 5);
    }
}
