//! `POST /emails` (render, log the activity, queue the tracked email: 202), `GET
//! /emails/{id}` (delivery and engagement), and the public tracking endpoints: the open
//! pixel and the signed click redirect.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use crm_client_communication::{EmailEvent, EmailStatus, SentEmail};
use crm_web::{Action, ApiError, AppJson, AppPath, AppQuery, AuthUser, FieldErrors, Resource, Scope, codes};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Accepted, Forward, path_id, publish};
use crate::AppState;
use crate::compose::{self, Content};
use crate::domain::{ActivityWrite, MAX_BODY, MAX_SUBJECT, optional_text, positive_id};
use crate::repo::{self, EmailWrite};

/// Internal event: a CRM email waits for delivery (consumed by this service's delivery
/// consumer, so the email is sent even if this instance stops right after answering).
pub const EMAIL_QUEUED: &str = "email.queued";

/// Body of `POST /emails`: a template, or subject and bodies (variables allowed in both).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEmailRequest {
    pub contact_id: i32,
    #[serde(default)]
    pub template_id: Option<i32>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body_html: Option<String>,
    #[serde(default)]
    pub body_text: Option<String>,
    #[serde(default)]
    pub deal_id: Option<i32>,
}

pub fn email_event(e: &EmailStatus) -> EmailEvent {
    EmailEvent {
        email_id: e.id,
        activity_id: e.activity_id,
        contact_id: e.contact_id,
        email_address: e.email_address.clone(),
        template_id: e.template_id,
    }
}

/// Renders and queues an email to a contact; the activity is logged at once.
#[utoipa::path(post, path = "/api/v1/emails", request_body = SendEmailRequest, tag = "emails",
    responses((status = 202, body = SentEmail), (status = 400), (status = 403), (status = 422), (status = 503)))]
pub async fn send(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppJson(req): AppJson<SendEmailRequest>,
) -> Result<Accepted<SentEmail>, ApiError> {
    user.require(Resource::Emails, Action::Write)?;
    let mut errors = FieldErrors::new();
    positive_id(&mut errors, "contact_id", Some(req.contact_id));
    let deal_id = positive_id(&mut errors, "deal_id", req.deal_id);
    let template_id = positive_id(&mut errors, "template_id", req.template_id);
    let subject = optional_text(&mut errors, "subject", req.subject.as_deref(), MAX_SUBJECT);
    let body_html = optional_text(&mut errors, "body_html", req.body_html.as_deref(), MAX_BODY);
    let body_text = optional_text(&mut errors, "body_text", req.body_text.as_deref(), MAX_BODY);
    match (template_id, &subject, &body_html) {
        (Some(_), None, None) if body_text.is_none() => {}
        (Some(_), _, _) => errors.add("template_id", "give either template_id or subject and body_html, not both"),
        (None, Some(_), Some(_)) => {}
        (None, None, _) => errors.add("subject", "required without template_id"),
        (None, Some(_), None) => errors.add("body_html", "required without template_id"),
    }
    errors.into_result()?;

    let content = match template_id {
        Some(id) => {
            let mut conn = state.db.connect().await?;
            let tx = conn.tenant(&user.tenant_id).await?;
            let template = repo::template_by_id(&tx, id).await?.ok_or_else(|| {
                ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, format!("email template {id} does not exist"))
                    .with_details(serde_json::json!({"fields": {"template_id": format!("email template {id} does not exist")}}))
            })?;
            tx.commit().await?;
            if !template.template.is_active {
                return Err(ApiError::unprocessable("TEMPLATE_INACTIVE", "the email template is not active"));
            }
            Content { subject: template.template.subject, body_html: template.body_html, body_text: Some(template.body_text).filter(|t| !t.is_empty()) }
        }
        None => {
            let content = Content { subject: subject.unwrap_or_default(), body_html: body_html.unwrap_or_default(), body_text };
            compose::check_variables(&content)?;
            content
        }
    };
    let context = compose::gather(&state.clients, &ctx.0, &user, Some(req.contact_id), deal_id).await?;
    let Some(contact) = context.contact else { return Err(ApiError::internal("contact lookup returned nothing")) };
    if contact.email.trim().is_empty() {
        return Err(ApiError::unprocessable("CONTACT_HAS_NO_EMAIL", "the contact has no email address"));
    }
    let rendered = compose::render_content(&content, &context.values)?;
    let subject: String = rendered.subject.chars().take(MAX_SUBJECT).collect();

    let now = Utc::now();
    let activity = ActivityWrite {
        r#type: "email".into(),
        subject: if subject.is_empty() { "(no subject)".into() } else { subject.clone() },
        description: Some(rendered.body_text.clone()).filter(|t| !t.is_empty()),
        status: "completed".into(),
        direction: Some("outbound".into()),
        outcome: None,
        duration_minutes: None,
        scheduled_at: None,
        completed_at: Some(now),
        contact_id: Some(contact.id),
        company_id: contact.company_id,
        deal_id,
        owner_id: Some(user.user_id),
        custom_fields: Default::default(),
        needs_review: false,
    };
    let message_id = format!("{}@{}", ulid::Ulid::generate(), state.config.message_id_domain());
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let mut activity = repo::insert_activity(&tx, &activity, Some(user.user_id), None).await?.ok_or_else(|| ApiError::internal("insert returned no row"))?;
    let email = repo::insert_email(
        &tx,
        &EmailWrite {
            kind: "crm",
            status: "queued",
            activity_id: Some(activity.id),
            template_id,
            contact_id: Some(contact.id),
            deal_id,
            sender_id: Some(user.user_id),
            email_address: contact.email.trim(),
            subject: &subject,
            body_html: Some(&rendered.body_html),
            body_text: Some(&rendered.body_text),
            message_id: &message_id,
            sent_at: None,
            source_event_id: None,
        },
    )
    .await?
    .ok_or_else(|| ApiError::internal("insert returned no row"))?;
    publish(&tx, "activity.logged", Some(user.user_id), activity.info()).await?;
    publish(&tx, EMAIL_QUEUED, Some(user.user_id), email_event(&email)).await?;
    tx.commit().await?;
    state.clients.enrich_activities(&ctx.0, std::slice::from_mut(&mut activity)).await;
    Ok(Accepted(SentEmail { email, activity }))
}

#[utoipa::path(get, path = "/api/v1/emails/{id}", tag = "emails",
    responses((status = 200, body = EmailStatus), (status = 401), (status = 403), (status = 404)))]
pub async fn get(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<AppJson<EmailStatus>, ApiError> {
    let scope = user.require(Resource::Emails, Action::Read)?;
    let id = path_id(&id, "email")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let email = repo::email_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("email"))?;
    tx.commit().await?;
    // A sales rep sees the emails it sent; others' are "not found".
    if scope == Scope::Own && email.sender_id != Some(user.user_id) {
        return Err(ApiError::not_found("email"));
    }
    Ok(AppJson(email))
}

/// A transparent 1x1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

enum Engagement {
    Open,
    Click,
}

/// Records an open or click for a verified (tenant, email); `false` when the tenant or email
/// no longer exists.
async fn record(state: &AppState, tenant: &crm_tenant::TenantId, email_id: i32, what: Engagement) -> Result<bool, ApiError> {
    if state.registry.by_id(tenant).await?.is_none() {
        return Ok(false);
    }
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(tenant).await?;
    let recorded = match what {
        Engagement::Open => repo::record_open(&tx, email_id).await?,
        Engagement::Click => repo::record_click(&tx, email_id).await?,
    };
    let Some((email, first)) = recorded else { return Ok(false) };
    if first {
        let event = match what {
            Engagement::Open => "email.opened",
            Engagement::Click => "email.clicked",
        };
        publish(&tx, event, None, email_event(&email)).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Open-tracking pixel (no auth). The first open is recorded with `email.opened`; every
/// open is counted.
#[utoipa::path(get, path = "/api/v1/t/o/{token}.gif", tag = "tracking",
    responses((status = 200, content_type = "image/gif"), (status = 404)))]
pub async fn open_pixel(State(state): State<AppState>, AppPath(file): AppPath<String>) -> Result<Response, ApiError> {
    let token = file.strip_suffix(".gif").ok_or_else(|| ApiError::not_found("tracking pixel"))?;
    let (tenant, email_id) = state.tracker.verify_token(token).ok_or_else(|| ApiError::not_found("tracking pixel"))?;
    if !record(&state, &tenant, email_id, Engagement::Open).await? {
        return Err(ApiError::not_found("tracking pixel"));
    }
    let mut response = PIXEL.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache, must-revalidate, max-age=0"));
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClickParams {
    /// The target URL, as signed into the email.
    pub u: String,
    /// Signature of token and URL.
    pub s: String,
}

/// Click tracking (no auth): redirects only to the URL signed into the email; a link whose
/// URL or signature was altered is refused (no open redirect).
#[utoipa::path(get, path = "/api/v1/t/c/{token}", params(ClickParams), tag = "tracking",
    responses((status = 302), (status = 400), (status = 404)))]
pub async fn click(State(state): State<AppState>, AppPath(token): AppPath<String>, AppQuery(params): AppQuery<ClickParams>) -> Result<Response, ApiError> {
    let (tenant, email_id) = state.tracker.verify_token(&token).ok_or_else(|| ApiError::not_found("tracking link"))?;
    if !state.tracker.verify_link(&token, &params.u, &params.s) {
        tracing::info!(security_event = "tracking_link_tampered", tenant_id = %tenant, email_id, "click link with an invalid signature refused");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "INVALID_TRACKING_LINK", "this link is not valid"));
    }
    let location = HeaderValue::from_str(&params.u).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_TRACKING_LINK", "this link is not valid"))?;
    // The link is genuine: the reader gets where it points even if recording fails.
    if let Err(e) = record(&state, &tenant, email_id, Engagement::Click).await {
        tracing::warn!(error = %e, tenant_id = %tenant, email_id, "click not recorded");
    }
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
