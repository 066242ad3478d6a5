//! Emails: sending a CRM email to a contact (rendered, logged as an activity, queued for
//! delivery), its delivery and engagement, the delivery of queued emails, and the system
//! emails (invitation, password reset) of other services' events.
//!
//! Emails go out before the consumer's transaction commits: a crash between the two
//! re-sends (at least once), it never loses one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_client_communication::subjects::{ACTIVITY_LOGGED, EMAIL_QUEUED, EMAIL_SENT};
use crm_client_communication::{EmailEvent, EmailStatus, SentEmail};
use crm_client_core::CallContext;
use crm_client_tenant::InvitationInfo;
use crm_events::{Envelope, HandlerError, publish};
use crm_tenant::{TenantId, TenantTx};
use crm_web::{ApiError, Can, Claims, FieldErrors, JwtKeys, Role, TokenType, codes, perm};
use serde::Deserialize;

use super::no_row;
use crate::AppState;
use crate::compose::{self, Content};
use crate::domain::{ActivityWrite, MAX_BODY, MAX_SUBJECT, NewEmail, optional_body, optional_line, positive_id};
use crate::mailer::OutgoingEmail;
use crate::render::html_escape;
use crate::repo::emails::{self as repo, EmailWrite};
use crate::repo::{activities as activity_repo, templates as template_repo};
use crate::tracking::percent_encode;

/// The payload of the email events (`email.queued`, `email.sent`, `email.opened`,
/// `email.clicked`).
pub fn email_event(e: &EmailStatus) -> EmailEvent {
    EmailEvent {
        email_id: e.id,
        activity_id: e.activity_id,
        contact_id: e.contact_id,
        email_address: e.email_address.clone(),
        template_id: e.template_id,
    }
}

/// Renders and queues an email to a contact; the activity is logged at once
/// (`activity.logged`), the delivery consumer sends it (`email.queued`).
pub async fn send(state: &AppState, can: &Can<perm::EmailsWrite>, input: NewEmail) -> Result<SentEmail, ApiError> {
    let mut errors = FieldErrors::new();
    positive_id(&mut errors, "contact_id", Some(input.contact_id));
    let deal_id = positive_id(&mut errors, "deal_id", input.deal_id);
    let template_id = positive_id(&mut errors, "template_id", input.template_id);
    let subject = optional_line(&mut errors, "subject", input.subject.as_deref(), MAX_SUBJECT);
    let body_html = optional_body(&mut errors, "body_html", input.body_html.as_deref(), MAX_BODY);
    let body_text = optional_body(&mut errors, "body_text", input.body_text.as_deref(), MAX_BODY);
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
            let tx = state.db.tenant(&can.tenant_id).await?;
            let template = template_repo::by_id(&tx, id).await?.ok_or_else(|| {
                ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, format!("email template {id} does not exist"))
                    .with_details(serde_json::json!({"fields": {"template_id": format!("email template {id} does not exist")}}))
            })?;
            tx.commit().await?;
            if !template.template.is_active {
                return Err(ApiError::unprocessable(codes::TEMPLATE_INACTIVE, "the email template is not active"));
            }
            Content { subject: template.template.subject, body_html: template.body_html, body_text: Some(template.body_text).filter(|t| !t.is_empty()) }
        }
        None => {
            let content = Content { subject: subject.unwrap_or_default(), body_html: body_html.unwrap_or_default(), body_text };
            compose::check_variables(&content)?;
            content
        }
    };
    let context = compose::gather(&state.clients, &can.ctx, can, Some(input.contact_id), deal_id).await?;
    let Some(contact) = context.contact else { return Err(ApiError::internal("contact lookup returned nothing")) };
    if contact.email.trim().is_empty() {
        return Err(ApiError::unprocessable(crm_web::codes::CONTACT_HAS_NO_EMAIL, "the contact has no email address"));
    }
    let rendered = compose::render_content(&content, &context.values)?;
    // A single line whatever the variables held (a value written before names were checked
    // must not break the Subject header).
    let subject: String = rendered.subject.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_SUBJECT).collect();

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
        owner_id: Some(can.user_id),
        custom_fields: Default::default(),
        needs_review: false,
    };
    let message_id = format!("{}@{}", ulid::Ulid::generate(), state.settings.message_id_domain());
    let tx = state.db.tenant(&can.tenant_id).await?;
    super::references::refuse_gone(&tx, activity.contact_id, activity.company_id, activity.deal_id).await?;
    let mut activity = activity_repo::insert(&tx, &activity, Some(can.user_id), None).await?.ok_or_else(no_row)?;
    let email = repo::insert(
        &tx,
        &EmailWrite {
            kind: "crm",
            status: "queued",
            activity_id: Some(activity.id),
            template_id,
            contact_id: Some(contact.id),
            deal_id,
            sender_id: Some(can.user_id),
            email_address: contact.email.trim(),
            subject: &subject,
            body_html: Some(&rendered.body_html),
            body_text: Some(&rendered.body_text),
            message_id: &message_id,
            sent_at: None,
            source_event_id: None,
            marketing: false,
        },
    )
    .await?
    .ok_or_else(no_row)?;
    publish(&tx, Some(can.user_id), ACTIVITY_LOGGED, activity.info()).await?;
    publish(&tx, Some(can.user_id), EMAIL_QUEUED, email_event(&email)).await?;
    tx.commit().await?;
    state.clients.enrich_activities(&can.ctx, std::slice::from_mut(&mut activity)).await;
    Ok(SentEmail { email, activity })
}

/// Delivery and engagement of an email, if the caller may see it (a sales rep: the ones it
/// sent or whose activity it owns; system emails: admins).
pub async fn get(state: &AppState, can: &Can<perm::EmailsRead>, id: i32) -> Result<EmailStatus, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    // The one rule (`super::email_visibility`): anything else is "not found".
    let email = repo::by_id(&tx, id, &super::email_visibility(can)).await?.ok_or_else(|| ApiError::not_found("email"))?;
    tx.commit().await?;
    Ok(email)
}

/// `email.queued`: sends a queued CRM email with its open pixel and signed click links, then
/// marks it sent (`email.sent`). An email sent already (or gone with its tenant's data) is
/// skipped.
pub async fn deliver_queued(state: &AppState, tx: &TenantTx, queued: &EmailEvent) -> Result<(), HandlerError> {
    let Some(row) = repo::queued_for_update(tx, queued.email_id).await? else {
        return Ok(());
    };
    let token = state.tracker.token(tx.tenant_id(), row.email.id);
    let mut html = row.body_html.map(|html| state.tracker.instrument_html(&html, &token));
    let mut text = row.body_text;
    // Marketing email (sequence steps, rule emails): the one-click unsubscribe (RFC 8058)
    // in the headers and a visible link in both bodies (not click-tracked).
    let list_unsubscribe = row.marketing.then(|| state.tracker.unsubscribe_url(&state.tracker.unsubscribe_token(tx.tenant_id(), row.email.id)));
    if let Some(url) = &list_unsubscribe {
        text = format!("{text}\n\n--\nUnsubscribe: {url}\n");
        html = html.map(|h| with_unsubscribe_link(&h, url));
    }
    let email = OutgoingEmail {
        message_id: row.email.message_id.clone().unwrap_or_else(|| format!("{}@{}", ulid::Ulid::generate(), state.settings.message_id_domain())),
        to: row.email.email_address.clone(),
        subject: row.email.subject.clone(),
        text,
        html,
        list_unsubscribe,
    };
    state.mailer.send(&email).await?;
    let sent = repo::mark_sent(tx, row.email.id, Utc::now()).await?;
    // An email sent by a rule carries the rule chain's depth on to `email.sent`.
    let depth = crate::repo::rules::take_depth(tx, &format!("email:{}", sent.id)).await?;
    let event = crm_events::Envelope::new(EMAIL_SENT, tx.tenant_id(), sent.sender_id.map(|a| a.to_string()), email_event(&sent))?;
    crm_events::enqueue(tx, &event).await?;
    if let Some(depth) = depth {
        crate::repo::rules::put_depth(tx, &format!("event:{}", event.id), depth).await?;
    }
    Ok(())
}

/// The HTML body with a visible unsubscribe link at its end (before `</body>` if any).
fn with_unsubscribe_link(html: &str, url: &str) -> String {
    let link = format!(
        r#"<p style="font-size:12px;color:#666">You receive this email from our CRM. <a href="{}">Unsubscribe</a></p>"#,
        html_escape(url)
    );
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{link}{}", &html[..at], &html[at..]),
        None => format!("{html}{link}"),
    }
}

/// A 60-second service token for `tenant` (role `service`: basic lookups only), for calls
/// made with no user behind them.
pub fn service_context(keys: &JwtKeys, tenant: &TenantId, request_id: &str) -> Result<CallContext, HandlerError> {
    let claims = Claims::new(TokenType::Access, 0, *tenant, crate::SERVICE, Role::Service, keys.issuer(), Duration::from_secs(60));
    let token = keys.issue(&claims).map_err(|e| HandlerError::msg(format!("cannot sign a service token: {e}")))?;
    Ok(CallContext::new(token).with_request_id(request_id))
}

async fn tenant_name(state: &AppState, tenant: &TenantId) -> String {
    match state.registry.by_id(tenant).await {
        Ok(Some(t)) => t.name,
        _ => "your team".to_owned(),
    }
}

/// `tenant.user_invited`: the invitation email with the accept link, naming who invited
/// (looked up with a service token; degraded when unknown).
pub async fn send_invitation(state: &AppState, tx: &TenantTx, event: &Envelope, invitation: &InvitationInfo) -> Result<(), HandlerError> {
    let token = invitation.token.as_deref().ok_or_else(|| HandlerError::msg("tenant.user_invited without a token"))?;
    let tenant = tx.tenant_id();
    let team = tenant_name(state, tenant).await;
    let inviter = match event.actor.as_deref().and_then(|a| a.parse::<i32>().ok()) {
        Some(id) => {
            let ctx = service_context(&state.auth.keys, tenant, &event.id)?;
            state.clients.auth.user_basic(&ctx, id).await.ok().map(|u| u.full_name()).filter(|n| !n.is_empty())
        }
        None => None,
    };
    let link = format!("{}/register?invitation={}", state.settings.app_base_url, percent_encode(token));
    let who = inviter.map(|n| format!("{n} invited you")).unwrap_or_else(|| "You are invited".to_owned());
    let subject = format!("You're invited to join {team}");
    let expires = invitation.expires_at.format("%Y-%m-%d %H:%M UTC");
    let text = format!(
        "{who} to join {team} as {role}.\n\nAccept the invitation:\n{link}\n\nThe invitation expires on {expires}.\n",
        role = invitation.role
    );
    let html = format!(
        "<p>{who} to join <b>{team}</b> as {role}.</p><p><a href=\"{link}\">Accept the invitation</a></p>\
         <p>The invitation expires on {expires}.</p>",
        who = html_escape(&who),
        team = html_escape(&team),
        role = html_escape(&invitation.role),
        link = html_escape(&link),
    );
    send_system_email(state, tx, event, SystemEmail { kind: "invitation", to: &invitation.email, subject: &subject, text, html }).await
}

/// Payload of `user.password_reset_requested` (the user's basic info plus the reset token).
#[derive(Debug, Deserialize)]
pub struct PasswordReset {
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    pub reset_token: String,
    pub expires_at: DateTime<Utc>,
}

/// `user.password_reset_requested`: the reset email with the one-time link.
pub async fn send_password_reset(state: &AppState, tx: &TenantTx, event: &Envelope, reset: &PasswordReset) -> Result<(), HandlerError> {
    let link = format!("{}/reset-password?token={}", state.settings.app_base_url, percent_encode(&reset.reset_token));
    let greeting = if reset.first_name.is_empty() { "Hello".to_owned() } else { format!("Hello {}", reset.first_name) };
    let expires = reset.expires_at.format("%Y-%m-%d %H:%M UTC");
    let subject = "Reset your password";
    let text = format!(
        "{greeting},\n\nSomeone asked to reset your password. To choose a new one, open:\n{link}\n\n\
         The link works once, until {expires}. If you did not ask for it, ignore this email.\n"
    );
    let html = format!(
        "<p>{greeting},</p><p>Someone asked to reset your password. <a href=\"{link}\">Choose a new password</a>.</p>\
         <p>The link works once, until {expires}. If you did not ask for it, ignore this email.</p>",
        greeting = html_escape(&greeting),
        link = html_escape(&link),
    );
    send_system_email(state, tx, event, SystemEmail { kind: "password_reset", to: &reset.email, subject, text, html }).await
}

/// A system email: its kind (`invitation`, `password_reset`), recipient and content.
struct SystemEmail<'a> {
    kind: &'a str,
    to: &'a str,
    subject: &'a str,
    text: String,
    html: String,
}

/// Sends a system email once per event: the tracking row (no body: it holds a secret link)
/// is written first, so a redelivery finds it and sends nothing.
async fn send_system_email(state: &AppState, tx: &TenantTx, event: &Envelope, mail: SystemEmail<'_>) -> Result<(), HandlerError> {
    let SystemEmail { kind, to, subject, text, html } = mail;
    let message_id = format!("{}@{}", ulid::Ulid::generate(), state.settings.message_id_domain());
    let write = EmailWrite {
        kind,
        status: "sent",
        activity_id: None,
        template_id: None,
        contact_id: None,
        deal_id: None,
        sender_id: None,
        email_address: to,
        subject,
        body_html: None,
        body_text: None,
        message_id: &message_id,
        sent_at: Some(Utc::now()),
        source_event_id: Some(&event.id),
        marketing: false,
    };
    if repo::insert(tx, &write).await?.is_none() {
        return Ok(());
    }
    let email = OutgoingEmail { message_id, to: to.to_owned(), subject: subject.to_owned(), text, html: Some(html), list_unsubscribe: None };
    state.mailer.send(&email).await?;
    Ok(())
}
