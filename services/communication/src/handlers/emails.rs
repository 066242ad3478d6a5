//! `POST /emails` (render, log the activity, queue the tracked email: 202) and
//! `GET /emails/{id}` (delivery and engagement).

use axum::extract::State;
use crm_client_communication::{EmailStatus, SentEmail};
use crm_web::{ApiError, AppJson, AppPath, Can, perm};

use super::Accepted;
use crate::AppState;
use crate::domain::NewEmail;
use crate::service::{emails as service, parse_id};

/// Renders and queues an email to a contact; the activity is logged at once, the email is
/// delivered right after (`email.sent`).
#[utoipa::path(post, path = "/api/v1/emails", request_body = NewEmail, tag = "emails",
    responses((status = 202, description = "Queued", body = SentEmail), (status = 400), (status = 401), (status = 403), (status = 422), (status = 503)))]
pub async fn send_email(State(state): State<AppState>, can: Can<perm::EmailsWrite>, AppJson(body): AppJson<NewEmail>) -> Result<Accepted<SentEmail>, ApiError> {
    Ok(Accepted(service::send(&state, &can, body).await?))
}

/// Delivery and engagement of an email (a sales rep: of the ones it sent).
#[utoipa::path(get, path = "/api/v1/emails/{id}", params(("id" = i32, Path, description = "Email id")), tag = "emails",
    responses((status = 200, description = "The email's status", body = EmailStatus), (status = 401), (status = 403), (status = 404)))]
pub async fn get_email(State(state): State<AppState>, can: Can<perm::EmailsRead>, AppPath(id): AppPath<String>) -> Result<AppJson<EmailStatus>, ApiError> {
    let id = parse_id(&id, "email")?;
    Ok(AppJson(service::get(&state, &can, id).await?))
}
