//! Calls to contact-service and auth-service: display names for responses (batched, one
//! request per service per response, degraded to `null` when a service is slow or down)
//! and existence checks of referenced rows on writes (422 when missing, 503 when the
//! owning service cannot answer).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crm_client_auth::AuthClient;
use crm_client_contact::{ContactBasicInfo, ContactClient};
use crm_client_core::{CallContext, ClientError};
use crm_client_deal::DealResponse;
use crm_web::ApiError;
use serde_json::json;

use crate::domain::{days_until_close, deal_age_days, minor_units};
use crate::repo::DealRow;

/// The clients of the services deal-service depends on, with the time budget of a lookup.
#[derive(Clone)]
pub struct Lookups {
    pub contacts: Arc<dyn ContactClient>,
    pub users: Arc<dyn AuthClient>,
    /// Longest a response waits for names before answering without them.
    pub timeout: Duration,
}

/// Display names by id; a missing id shows as `null`.
#[derive(Debug, Default)]
pub struct Names {
    pub contacts: HashMap<i32, ContactBasicInfo>,
    pub companies: HashMap<i32, String>,
    pub users: HashMap<i32, String>,
}

/// Ids referenced by a set of rows, deduplicated.
#[derive(Debug, Default)]
pub struct Wanted {
    pub contacts: BTreeSet<i32>,
    pub companies: BTreeSet<i32>,
    pub users: BTreeSet<i32>,
}

impl Wanted {
    pub fn of_deals<'a>(deals: impl IntoIterator<Item = &'a DealRow>) -> Self {
        let mut w = Self::default();
        for d in deals {
            w.contacts.extend(d.fields.primary_contact_id);
            w.companies.extend(d.fields.company_id);
            w.users.extend(d.fields.owner_id);
        }
        w
    }
}

fn vec(ids: &BTreeSet<i32>) -> Vec<i32> {
    ids.iter().copied().collect()
}

impl Lookups {
    async fn within<T>(&self, call: impl Future<Output = Result<T, ClientError>>) -> Result<T, ClientError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| Err(ClientError::Unavailable(format!("no answer within {:?}", self.timeout))))
    }

    /// One request to contact-service (contacts and companies together) and one to
    /// auth-service, concurrently; a failing service leaves its names out.
    pub async fn names(&self, ctx: &CallContext, wanted: &Wanted) -> Names {
        let (contact_ids, company_ids, user_ids) = (vec(&wanted.contacts), vec(&wanted.companies), vec(&wanted.users));
        let contact_side = async {
            if contact_ids.is_empty() && company_ids.is_empty() {
                return Ok((Vec::new(), Vec::new()));
            }
            self.within(self.contacts.contacts_and_companies_basic(ctx, &contact_ids, &company_ids)).await
        };
        let user_side = async {
            if user_ids.is_empty() {
                return Ok(Vec::new());
            }
            self.within(self.users.users_basic(ctx, &user_ids)).await
        };
        let (contact_side, user_side) = tokio::join!(contact_side, user_side);
        let mut names = Names::default();
        match contact_side {
            Ok((contacts, companies)) => {
                names.contacts = contacts.into_iter().map(|c| (c.id, c)).collect();
                names.companies = companies.into_iter().map(|c| (c.id, c.name)).collect();
            }
            Err(e) => tracing::warn!(dependency = "contact-service", error = %e, "names left out: dependency failed"),
        }
        match user_side {
            Ok(users) => names.users = users.into_iter().map(|u| (u.id, u.full_name())).collect(),
            Err(e) => tracing::warn!(dependency = "auth-service", error = %e, "names left out: dependency failed"),
        }
        names
    }

    /// The rows as the API shows them, with names looked up in one batch.
    pub async fn respond(&self, ctx: &CallContext, rows: Vec<DealRow>) -> Vec<DealResponse> {
        let names = self.names(ctx, &Wanted::of_deals(&rows)).await;
        rows.into_iter().map(|row| to_response(row, &names)).collect()
    }

    pub async fn respond_one(&self, ctx: &CallContext, row: DealRow) -> DealResponse {
        let names = self.names(ctx, &Wanted::of_deals([&row])).await;
        to_response(row, &names)
    }

    /// Checks that the referenced company, contact and owner exist in the caller's tenant:
    /// 422 `REFERENCE_NOT_FOUND` naming every missing one, 503 when a service cannot answer.
    /// `owner_id` equal to the caller is not looked up (the token proves the user).
    pub async fn check_refs(&self, ctx: &CallContext, refs: Refs, caller: i32) -> Result<(), ApiError> {
        // Ids that cannot exist (0, negative) are not asked for: they are reported missing.
        let contact_ids: Vec<i32> = refs.contact.into_iter().filter(|id| *id > 0).collect();
        let company_ids: Vec<i32> = refs.company.into_iter().filter(|id| *id > 0).collect();
        let owner = refs.owner.filter(|o| *o != caller);
        let contact_side = async {
            if contact_ids.is_empty() && company_ids.is_empty() {
                return Ok((Vec::new(), Vec::new()));
            }
            self.within(self.contacts.contacts_and_companies_basic(ctx, &contact_ids, &company_ids)).await
        };
        let user_side = async {
            match owner {
                None => Ok(Vec::new()),
                Some(id) if id <= 0 => Ok(Vec::new()),
                Some(id) => self.within(self.users.users_basic(ctx, &[id])).await,
            }
        };
        let (contact_side, user_side) = tokio::join!(contact_side, user_side);
        let (contacts, companies) = contact_side.map_err(|e| unavailable("contact-service", &e))?;
        let users = user_side.map_err(|e| unavailable("auth-service", &e))?;
        let mut missing = serde_json::Map::new();
        if let Some(id) = refs.contact
            && !contacts.iter().any(|c| c.id == id)
        {
            missing.insert("primary_contact_id".into(), json!(format!("contact {id} does not exist")));
        }
        if let Some(id) = refs.company
            && !companies.iter().any(|c| c.id == id)
        {
            missing.insert("company_id".into(), json!(format!("company {id} does not exist")));
        }
        if let Some(id) = owner
            && !users.iter().any(|u| u.id == id)
        {
            missing.insert("owner_id".into(), json!(format!("user {id} does not exist")));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ApiError::unprocessable(crm_web::codes::REFERENCE_NOT_FOUND, "a referenced record does not exist")
                .with_details(json!({ "fields": missing })))
        }
    }
}

impl Lookups {
    /// The contact, or 422 `REFERENCE_NOT_FOUND` on `contact_id` (503 when contact-service
    /// cannot answer).
    pub async fn check_contact(&self, ctx: &CallContext, id: i32) -> Result<ContactBasicInfo, ApiError> {
        let (contacts, _) = self
            .within(self.contacts.contacts_and_companies_basic(ctx, &[id], &[]))
            .await
            .map_err(|e| unavailable("contact-service", &e))?;
        contacts.into_iter().find(|c| c.id == id).ok_or_else(|| {
            ApiError::unprocessable(crm_web::codes::REFERENCE_NOT_FOUND, "a referenced record does not exist")
                .with_details(json!({ "fields": { "contact_id": format!("contact {id} does not exist") } }))
        })
    }
}

/// References a write asks to set (only those that change need checking).
#[derive(Debug, Default, Clone, Copy)]
pub struct Refs {
    pub company: Option<i32>,
    pub contact: Option<i32>,
    pub owner: Option<i32>,
}

fn unavailable(service: &str, e: &ClientError) -> ApiError {
    tracing::warn!(dependency = service, error = %e, "reference check failed");
    ApiError::unavailable(format!("{service} unavailable: the referenced records cannot be checked, retry later"))
}

/// A stored deal as the API shows it: names from `names`, calculated fields as of now.
pub fn to_response(row: DealRow, names: &Names) -> DealResponse {
    let now = Utc::now();
    let today = now.date_naive();
    let f = row.fields;
    let weighted_value = f.value.map(|v| v.weighted(f.probability, minor_units(&f.currency)).as_f64());
    DealResponse {
        id: row.id,
        title: f.title,
        value: f.value.map(|v| v.as_f64()),
        currency: f.currency,
        probability: f.probability,
        stage: f.stage,
        primary_contact_name: f.primary_contact_id.and_then(|id| names.contacts.get(&id)).map(ContactBasicInfo::full_name),
        company_name: f.company_id.and_then(|id| names.companies.get(&id)).cloned(),
        owner_name: f.owner_id.and_then(|id| names.users.get(&id)).cloned(),
        primary_contact_id: f.primary_contact_id,
        company_id: f.company_id,
        owner_id: f.owner_id,
        deal_age_days: deal_age_days(row.created_at, now),
        days_until_close: days_until_close(f.expected_close_date, f.actual_close_date, today),
        weighted_value,
        expected_close_date: f.expected_close_date,
        actual_close_date: f.actual_close_date,
        deal_source: f.source,
        description: f.description,
        close_reason: f.close_reason,
        custom_fields: f.custom_fields,
        created_at: row.created_at,
        updated_at: row.updated_at,
        created_by: row.created_by,
        stage_history: None,
    }
}
