//! Owners are auth-service users: validated and named through its client, one call per
//! request (batched), never one per row.

use std::collections::{BTreeSet, HashMap};

use crm_client_auth::{AuthClient, CallContext, ClientError};
use crm_client_contact::ContactDetails;
use crm_web::{ApiError, codes};

/// Fills `owner_name` of every contact with one batch lookup. A failing auth-service leaves
/// the names `null` (logged) instead of failing the response.
pub async fn enrich(users: &dyn AuthClient, ctx: &CallContext, contacts: &mut [ContactDetails]) {
    let ids: BTreeSet<i32> = contacts.iter().filter_map(|c| c.owner_id).collect();
    if ids.is_empty() {
        return;
    }
    let ids: Vec<i32> = ids.into_iter().filter(|id| *id > 0).collect();
    if ids.is_empty() {
        return;
    }
    let names: HashMap<i32, String> = match users.users_basic(ctx, &ids).await {
        Ok(found) => found.iter().map(|u| (u.id, u.full_name())).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "owner names unavailable: auth-service lookup failed");
            return;
        }
    };
    for c in contacts {
        c.owner_name = c.owner_id.and_then(|id| names.get(&id).cloned());
    }
}

/// Which of `ids` are not users of the caller's tenant (one batch lookup). The caller is
/// known to exist (their token proves it) and is never looked up. 503 when auth-service is
/// down: an owner cannot be assigned unchecked.
pub async fn unknown(users: &dyn AuthClient, ctx: &CallContext, caller: i32, ids: &BTreeSet<i32>) -> Result<BTreeSet<i32>, ApiError> {
    // Ids that cannot exist (0, negative) are unknown without asking.
    let (ids, impossible): (Vec<i32>, Vec<i32>) = ids.iter().copied().filter(|id| *id != caller).partition(|id| *id > 0);
    if ids.is_empty() {
        return Ok(impossible.into_iter().collect());
    }
    let impossible: BTreeSet<i32> = impossible.into_iter().collect();
    match users.users_basic(ctx, &ids).await {
        Ok(found) => {
            let found: BTreeSet<i32> = found.iter().map(|u| u.id).collect();
            Ok(ids.into_iter().filter(|id| !found.contains(id)).chain(impossible).collect())
        }
        Err(ClientError::Unavailable(e)) => {
            tracing::warn!(error = %e, "cannot validate owner: auth-service unavailable");
            Err(ApiError::unavailable("auth-service unavailable: cannot validate owner_id"))
        }
        Err(e) => Err(ApiError::internal(format!("owner validation failed: {e}"))),
    }
}

/// 422 unless `owner_id` is a user of the tenant.
pub async fn check(users: &dyn AuthClient, ctx: &CallContext, caller: i32, owner_id: Option<i32>) -> Result<(), ApiError> {
    let Some(owner_id) = owner_id else { return Ok(()) };
    if unknown(users, ctx, caller, &BTreeSet::from([owner_id])).await?.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, "owner_id is not a user of this tenant")
            .with_details(serde_json::json!({"fields": {"owner_id": "no such user"}})))
    }
}
