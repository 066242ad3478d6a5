//! One-click unsubscribe of marketing email (RFC 8058; no authentication: the signed token
//! names tenant and email). `GET` only shows a confirmation page (mail scanners follow
//! links; they must not unsubscribe anyone); `POST` records it once, stops the contact's
//! sequences at once and publishes `email.unsubscribed`, on which contact-service withdraws
//! the contact's marketing consent (source `unsubscribe`).

use crm_client_communication::EmailUnsubscribed;
use crm_client_communication::subjects::EMAIL_UNSUBSCRIBED;
use crm_events::publish;
use crm_tenant::TenantId;
use crm_web::ApiError;

use crate::AppState;
use crate::repo::unsubscribes as repo;

/// The (tenant, email, address) of a genuine unsubscribe token of an existing marketing
/// email; 404 for anything else.
async fn resolve(state: &AppState, token: &str) -> Result<(TenantId, i32, Option<i32>, String), ApiError> {
    let not_found = || ApiError::not_found("unsubscribe link");
    let (tenant, email_id) = state.tracker.verify_unsubscribe_token(token).ok_or_else(not_found)?;
    if state.registry.by_id(&tenant).await?.is_none() {
        return Err(not_found());
    }
    let tx = state.db.tenant(&tenant).await?;
    let (contact_id, address) = repo::marketing_email(&tx, email_id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok((tenant, email_id, contact_id, address))
}

/// `GET`: the address the link would unsubscribe (for the confirmation page).
pub async fn preview(state: &AppState, token: &str) -> Result<String, ApiError> {
    Ok(resolve(state, token).await?.3)
}

/// `POST`: unsubscribes (idempotent: the second time changes nothing and publishes nothing).
/// Returns the address.
pub async fn unsubscribe(state: &AppState, token: &str) -> Result<String, ApiError> {
    let (tenant, email_id, contact_id, address) = resolve(state, token).await?;
    let tx = state.db.tenant(&tenant).await?;
    if repo::record(&tx, email_id, contact_id, &address).await? {
        if let Some(contact_id) = contact_id {
            let stopped = super::sequences::stop_for_contact(&tx, contact_id, "unsubscribed").await?;
            tracing::info!(tenant_id = %tenant, contact_id, stopped, "unsubscribed: sequences stopped");
        }
        publish(&tx, None, EMAIL_UNSUBSCRIBED, EmailUnsubscribed { email_id, contact_id, email_address: address.clone() }).await?;
    }
    tx.commit().await?;
    Ok(address)
}
