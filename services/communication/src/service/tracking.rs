//! Open and click tracking (no authentication: the signed token names tenant and email).
//! The first open and the first click are recorded with `email.opened` / `email.clicked`;
//! every one is counted.

use axum::http::{HeaderValue, StatusCode};
use crm_client_communication::subjects::{EMAIL_CLICKED, EMAIL_OPENED};
use crm_events::publish;
use crm_tenant::TenantId;
use crm_web::{ApiError, codes};

use super::emails::email_event;
use crate::AppState;
use crate::repo::emails as repo;

enum Engagement {
    Open,
    Click,
}

/// Records an open or click for a verified (tenant, email); `false` when the tenant or email
/// no longer exists.
async fn record(state: &AppState, tenant: &TenantId, email_id: i32, what: Engagement) -> Result<bool, ApiError> {
    if state.registry.by_id(tenant).await?.is_none() {
        return Ok(false);
    }
    let tx = state.db.tenant(tenant).await?;
    let recorded = match what {
        Engagement::Open => repo::record_open(&tx, email_id).await?,
        Engagement::Click => repo::record_click(&tx, email_id).await?,
    };
    let Some((email, first)) = recorded else { return Ok(false) };
    if first {
        let event = match what {
            Engagement::Open => EMAIL_OPENED,
            Engagement::Click => EMAIL_CLICKED,
        };
        publish(&tx, None, event, email_event(&email)).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// The open pixel `<token>.gif` was loaded: 404 for anything but a genuine token of an
/// existing email.
pub async fn open(state: &AppState, file: &str) -> Result<(), ApiError> {
    let token = file.strip_suffix(".gif").ok_or_else(|| ApiError::not_found("tracking pixel"))?;
    let (tenant, email_id) = state.tracker.verify_token(token).ok_or_else(|| ApiError::not_found("tracking pixel"))?;
    if !record(state, &tenant, email_id, Engagement::Open).await? {
        return Err(ApiError::not_found("tracking pixel"));
    }
    Ok(())
}

fn invalid_link() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_TRACKING_LINK, "this link is not valid")
}

/// A tracked link was clicked: where to redirect. Only the URL signed into the email is
/// accepted (no open redirect); the click is recorded, but a failure to record it does not
/// keep the reader from a genuine link.
pub async fn click(state: &AppState, token: &str, url: &str, signature: &str) -> Result<HeaderValue, ApiError> {
    let (tenant, email_id) = state.tracker.verify_token(token).ok_or_else(|| ApiError::not_found("tracking link"))?;
    if !state.tracker.verify_link(token, url, signature) {
        tracing::info!(security_event = "tracking_link_tampered", tenant_id = %tenant, email_id, "click link with an invalid signature refused");
        return Err(invalid_link());
    }
    let location = HeaderValue::from_str(url).map_err(|_| invalid_link())?;
    if let Err(e) = record(state, &tenant, email_id, Engagement::Click).await {
        tracing::warn!(error = %e, tenant_id = %tenant, email_id, "click not recorded");
    }
    Ok(location)
}
