//! `/contacts/{id}/consent`: the contact's marketing-consent record; `/contacts/inactive-lead-job`:
//! the tenant's daily inactive-lead job.

use axum::extract::State;
use crm_client_contact::ConsentRecord;
use crm_web::{ApiError, AppJson, AppPath, Can, perm};

use super::parse_id;
use crate::AppState;
use crate::service::consent::{self as service, ConsentInput};
use crate::service::engagement::{self, InactiveLeadJob};

/// The contact's marketing consent: current status (`unknown` until something is recorded),
/// when and where it was last set, and the changes, newest first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/consent", params(("id" = i32, Path, description = "Contact id")), tag = "contacts",
    responses((status = 200, body = ConsentRecord), (status = 403), (status = 404)))]
pub async fn get_consent(State(state): State<AppState>, can: Can<perm::ContactsRead>, AppPath(id): AppPath<String>) -> Result<AppJson<ConsentRecord>, ApiError> {
    let id = parse_id(&id, "contact")?;
    Ok(AppJson(service::get(&state, &can, id).await?))
}

/// Records the contact's marketing consent (`granted` or `withdrawn`) and where it came from;
/// a change of status publishes `contact.consent_changed` (a withdrawal stops the contact's
/// sequences). Answers the record.
#[utoipa::path(put, path = "/api/v1/contacts/{id}/consent", params(("id" = i32, Path, description = "Contact id")), request_body = ConsentInput, tag = "contacts",
    responses((status = 200, body = ConsentRecord), (status = 400), (status = 403), (status = 404), (status = 415)))]
pub async fn put_consent(
    State(state): State<AppState>,
    can: Can<perm::ContactsWrite>,
    AppPath(id): AppPath<String>,
    AppJson(input): AppJson<ConsentInput>,
) -> Result<AppJson<ConsentRecord>, ApiError> {
    let id = parse_id(&id, "contact")?;
    Ok(AppJson(service::set(&state, &can, id, input).await?))
}

/// The tenant's daily inactive-lead job: setting, next and last run, what the last run found,
/// failures in a row and the last error.
#[utoipa::path(get, path = "/api/v1/contacts/inactive-lead-job", tag = "contacts",
    responses((status = 200, body = InactiveLeadJob), (status = 403)))]
pub async fn inactive_lead_job(State(state): State<AppState>, can: Can<perm::ContactsRead>) -> Result<AppJson<InactiveLeadJob>, ApiError> {
    Ok(AppJson(engagement::job(&state, &can).await?))
}

/// Makes the inactive-lead job due now (admins); 409 when the job is off.
#[utoipa::path(post, path = "/api/v1/contacts/inactive-lead-job/run", tag = "contacts",
    responses((status = 200, body = InactiveLeadJob), (status = 403), (status = 409)))]
pub async fn run_inactive_lead_job(State(state): State<AppState>, can: Can<perm::TenantWrite>) -> Result<AppJson<InactiveLeadJob>, ApiError> {
    Ok(AppJson(engagement::run_now(&state, &can).await?))
}
