//! Names of referenced rows from the owning services, one batch call per service and
//! request, all in parallel; a failing service degrades the names to `null` (its client has
//! a timeout and a circuit breaker). Also the existence checks of references on writes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crm_client_auth::AuthClient;
use crm_client_communication::ActivityDetails;
use crm_client_contact::ContactClient;
use crm_client_core::{CallContext, ClientError};
use crm_client_deal::DealClient;
use crm_web::{ApiError, codes};
use serde_json::json;

/// The clients of the services communication-service depends on.
#[derive(Clone)]
pub struct Clients {
    pub auth: Arc<dyn AuthClient>,
    pub contacts: Arc<dyn ContactClient>,
    pub deals: Arc<dyn DealClient>,
}

/// Ids to look up, per service.
#[derive(Debug, Default, Clone)]
pub struct Refs {
    pub contacts: BTreeSet<i32>,
    pub companies: BTreeSet<i32>,
    pub deals: BTreeSet<i32>,
    pub users: BTreeSet<i32>,
}

impl Refs {
    pub fn of_activities<'a>(activities: impl IntoIterator<Item = &'a ActivityDetails>) -> Self {
        let mut refs = Self::default();
        for a in activities {
            refs.contacts.extend(a.contact_id);
            refs.companies.extend(a.company_id);
            refs.deals.extend(a.deal_id);
            refs.users.extend(a.owner_id);
        }
        refs
    }
}

/// Display names found; `None` for a service that could not be reached.
#[derive(Debug, Default)]
pub struct Names {
    pub contacts: Option<HashMap<i32, String>>,
    pub companies: Option<HashMap<i32, String>>,
    pub deals: Option<HashMap<i32, String>>,
    pub users: Option<HashMap<i32, String>>,
}

fn degrade<T>(service: &str, result: Result<T, ClientError>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(service, error = %e, "enrichment degraded");
            None
        }
    }
}

/// The ids worth asking for: 0 and negative ids cannot exist (they are reported missing).
fn ids(set: &BTreeSet<i32>) -> Vec<i32> {
    set.iter().copied().filter(|id| *id > 0).collect()
}

impl Clients {
    /// Looks every set up with one call per service (none for an empty set).
    pub async fn lookup(&self, ctx: &CallContext, refs: &Refs) -> Names {
        // Contacts and companies in one request to contact-service.
        let contact_side = async {
            if ids(&refs.contacts).is_empty() && ids(&refs.companies).is_empty() {
                return Ok((HashMap::new(), HashMap::new()));
            }
            let (contacts, companies) =
                self.contacts.contacts_and_companies_basic(ctx, &ids(&refs.contacts), &ids(&refs.companies)).await?;
            Ok((
                contacts.into_iter().map(|c| (c.id, c.full_name())).collect::<HashMap<_, _>>(),
                companies.into_iter().map(|c| (c.id, c.name)).collect::<HashMap<_, _>>(),
            ))
        };
        let deals = async {
            if ids(&refs.deals).is_empty() {
                return Ok(HashMap::new());
            }
            let found = self.deals.deals_basic(ctx, &ids(&refs.deals)).await?;
            Ok(found.into_iter().map(|d| (d.id, d.title)).collect())
        };
        let users = async {
            if ids(&refs.users).is_empty() {
                return Ok(HashMap::new());
            }
            let found = self.auth.users_basic(ctx, &ids(&refs.users)).await?;
            Ok(found.into_iter().map(|u| (u.id, u.full_name())).collect())
        };
        let (contact_side, deals, users) = futures::join!(contact_side, deals, users);
        let (contacts, companies) = degrade("contact-service", contact_side).unzip();
        Names {
            contacts,
            companies,
            deals: degrade("deal-service", deals),
            users: degrade("auth-service", users),
        }
    }

    /// Fills the names of a page of activities (one call per service).
    pub async fn enrich_activities(&self, ctx: &CallContext, activities: &mut [ActivityDetails]) {
        let names = self.lookup(ctx, &Refs::of_activities(activities.iter())).await;
        for a in activities {
            names.apply(a);
        }
    }

    /// Checks that referenced rows exist: 422 `REFERENCE_NOT_FOUND` naming each missing one.
    /// `Ok(true)` when a service could not be asked (the write goes on, flagged for review).
    pub async fn verify(&self, ctx: &CallContext, refs: &Refs, fields: &RefFields) -> Result<bool, ApiError> {
        let names = self.lookup(ctx, refs).await;
        let mut missing = serde_json::Map::new();
        let mut unverified = false;
        let mut check = |field: Option<&str>, set: &BTreeSet<i32>, found: &Option<HashMap<i32, String>>, what: &str| {
            let Some(field) = field else { return };
            match found {
                None if !set.is_empty() => unverified = true,
                None => {}
                Some(found) => {
                    if let Some(id) = set.iter().find(|id| !found.contains_key(id)) {
                        missing.insert(field.to_owned(), json!(format!("{what} {id} does not exist")));
                    }
                }
            }
        };
        check(fields.contact, &refs.contacts, &names.contacts, "contact");
        check(fields.company, &refs.companies, &names.companies, "company");
        check(fields.deal, &refs.deals, &names.deals, "deal");
        check(fields.user, &refs.users, &names.users, "user");
        if !missing.is_empty() {
            return Err(ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, "referenced records do not exist")
                .with_details(json!({ "fields": missing })));
        }
        Ok(unverified)
    }
}

/// The request field each kind of reference came from (for error details).
#[derive(Debug, Default, Clone, Copy)]
pub struct RefFields {
    pub contact: Option<&'static str>,
    pub company: Option<&'static str>,
    pub deal: Option<&'static str>,
    pub user: Option<&'static str>,
}

impl Names {
    fn get(map: &Option<HashMap<i32, String>>, id: Option<i32>) -> Option<String> {
        map.as_ref()?.get(&id?).cloned()
    }

    pub fn apply(&self, a: &mut ActivityDetails) {
        a.contact_name = Self::get(&self.contacts, a.contact_id);
        a.company_name = Self::get(&self.companies, a.company_id);
        a.deal_title = Self::get(&self.deals, a.deal_id);
        a.owner_name = Self::get(&self.users, a.owner_id);
    }

    pub fn user(&self, id: Option<i32>) -> Option<String> {
        Self::get(&self.users, id)
    }
}
