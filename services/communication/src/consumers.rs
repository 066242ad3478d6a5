//! Event consumers (durable JetStream pull consumers run by `crm_events::run_consumer`: each
//! event is applied once per consumer, in the transaction that records it as processed;
//! failures are retried with back-off, then parked in `dead_letters`).
//!
//! * `deal.closed_won` -> activity "Deal closed won: <title>" on the deal, its primary
//!   contact and company, plus a follow-up task for the owner.
//! * `tenant.user_invited` -> invitation email with the accept link.
//! * `user.password_reset_requested` -> reset email with the reset link.
//! * `email.queued` (internal) -> delivery of an email queued by `POST /emails`, with open
//!   pixel and signed click links; `email.sent`.
//!
//! Rows created from an event carry its id in `source_event_id` (unique), a second guard
//! next to `processed_events`. Emails go out before the transaction commits: a crash between
//! the two re-sends (at least once), it never loses one.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_client_communication::EmailEvent;
use crm_client_core::CallContext;
use crm_client_deal::DealClosedEvent;
use crm_client_tenant::InvitationInfo;
use crm_events::{ConsumerSpec, Envelope, EventHandler, HandlerError};
use crm_tenant::{TenantId, TenantRegistry, TenantTx};
use crm_web::{Claims, JwtKeys, Role, TokenType};
use futures::future::BoxFuture;
use serde::Deserialize;

use crate::CommunicationConfig;
use crate::domain::{ActivityWrite, TaskWrite};
use crate::enrich::Clients;
use crate::handlers::emails::{EMAIL_QUEUED, email_event};
use crate::handlers::publish;
use crate::mailer::{Mailer, OutgoingEmail};
use crate::render::html_escape;
use crate::repo::{self, EmailWrite};
use crate::tracking::{Tracker, percent_encode};

/// Everything the consumers need.
#[derive(Clone)]
pub struct ConsumerDeps {
    pub clients: Clients,
    /// Signs the short-lived service tokens of calls made with no user behind them.
    pub keys: Arc<JwtKeys>,
    pub registry: Arc<TenantRegistry>,
    pub mailer: Arc<dyn Mailer>,
    pub tracker: Arc<Tracker>,
    pub config: Arc<CommunicationConfig>,
}

/// The consumers of this service, durable names prefixed with `prefix`
/// (`communication` in production).
pub fn consumers(deps: &ConsumerDeps, prefix: &str) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
    let deps = Arc::new(deps.clone());
    vec![
        (ConsumerSpec::new(format!("{prefix}-deal-closed-won"), "deal.closed_won"), Arc::new(DealClosedWon(deps.clone())) as Arc<dyn EventHandler>),
        (ConsumerSpec::new(format!("{prefix}-user-invited"), "tenant.user_invited"), Arc::new(UserInvited(deps.clone()))),
        (ConsumerSpec::new(format!("{prefix}-password-reset"), "user.password_reset_requested"), Arc::new(ResetRequested(deps.clone()))),
        (ConsumerSpec::new(format!("{prefix}-email-delivery"), EMAIL_QUEUED), Arc::new(DeliverEmail(deps))),
    ]
}

/// A 60-second service token for `tenant` (role `service`: basic lookups only).
pub fn service_context(keys: &JwtKeys, tenant: &TenantId, request_id: &str) -> Result<CallContext, HandlerError> {
    let claims = Claims::new(TokenType::Access, 0, *tenant, crate::SERVICE, Role::Service, keys.issuer(), Duration::from_secs(60));
    let token = keys.issue(&claims).map_err(|e| HandlerError::msg(format!("cannot sign a service token: {e}")))?;
    Ok(CallContext::new(token).with_request_id(request_id))
}

fn owner_of(event: &Envelope, data: &DealClosedEvent) -> Option<i32> {
    data.owner_id.or_else(|| event.actor.as_deref().and_then(|a| a.parse().ok()))
}

pub struct DealClosedWon(Arc<ConsumerDeps>);

impl EventHandler for DealClosedWon {
    fn handle<'a>(&'a self, tx: &'a TenantTx<'a>, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let deal: DealClosedEvent = event.data_as()?;
            let owner = owner_of(event, &deal);
            let value = if deal.deal.value > 0.0 { format!(" (value {:.2})", deal.deal.value) } else { String::new() };
            let mut custom_fields = crm_client_communication::CustomFields::new();
            custom_fields.insert("event".into(), "deal.closed_won".into());
            custom_fields.insert("deal_value".into(), deal.deal.value.into());
            let activity = ActivityWrite {
                r#type: "note".into(),
                subject: format!("Deal closed won: {}", deal.deal.title).chars().take(255).collect(),
                description: Some(format!("{} closed won on {}{value}.", deal.deal.title, deal.actual_close_date)),
                status: "completed".into(),
                direction: None,
                outcome: Some("won".into()),
                duration_minutes: None,
                scheduled_at: None,
                completed_at: Some(event.timestamp),
                contact_id: deal.primary_contact_id,
                company_id: deal.company_id,
                deal_id: Some(deal.deal.id),
                owner_id: owner,
                custom_fields,
                needs_review: false,
            };
            if let Some(logged) = repo::insert_activity(tx, &activity, None, Some(&event.id)).await? {
                publish(tx, "activity.logged", None, logged.info()).await.map_err(|e| HandlerError::msg(e.to_string()))?;
            }
            let Some(assignee) = owner else {
                tracing::info!(event_id = event.id, deal_id = deal.deal.id, "won deal without owner: no follow-up task");
                return Ok(());
            };
            let task = TaskWrite {
                title: format!("Follow up on won deal: {}", deal.deal.title).chars().take(255).collect(),
                description: Some("The deal was won: thank the customer and plan onboarding and next steps.".into()),
                r#type: "follow_up".into(),
                status: "pending".into(),
                priority: "high".into(),
                due_date: Some(event.timestamp + chrono::Duration::days(self.0.config.follow_up_days)),
                reminder_at: Some(event.timestamp + chrono::Duration::days(self.0.config.follow_up_days) - chrono::Duration::hours(2)),
                assigned_to: assignee,
                contact_id: deal.primary_contact_id,
                deal_id: Some(deal.deal.id),
                completed_at: None,
                custom_fields: Default::default(),
            };
            repo::insert_task(tx, &task, None, Some(&event.id)).await?;
            Ok(())
        })
    }
}

async fn tenant_name(registry: &TenantRegistry, tenant: &TenantId) -> String {
    match registry.by_id(tenant).await {
        Ok(Some(t)) => t.name,
        _ => "your team".to_owned(),
    }
}

/// Sends a system email (invitation, reset) once per event: the tracking row (no body: it
/// holds a secret link) is written first, so a redelivery finds it and sends nothing.
/// A system email: its kind (`invitation`, `password_reset`), recipient and content.
struct SystemEmail<'a> {
    kind: &'a str,
    to: &'a str,
    subject: &'a str,
    text: String,
    html: String,
}

async fn send_system_email(deps: &ConsumerDeps, tx: &TenantTx<'_>, event: &Envelope, mail: SystemEmail<'_>) -> Result<(), HandlerError> {
    let SystemEmail { kind, to, subject, text, html } = mail;
    let message_id = format!("{}@{}", ulid::Ulid::generate(), deps.config.message_id_domain());
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
    };
    if repo::insert_email(tx, &write).await?.is_none() {
        return Ok(());
    }
    let email = OutgoingEmail { message_id, to: to.to_owned(), subject: subject.to_owned(), text, html: Some(html) };
    deps.mailer.send(&email).await?;
    Ok(())
}

pub struct UserInvited(Arc<ConsumerDeps>);

impl EventHandler for UserInvited {
    fn handle<'a>(&'a self, tx: &'a TenantTx<'a>, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let deps = &self.0;
            let invitation: InvitationInfo = event.data_as()?;
            let token = invitation.token.as_deref().ok_or_else(|| HandlerError::msg("tenant.user_invited without a token"))?;
            let tenant = tx.tenant_id();
            let team = tenant_name(&deps.registry, tenant).await;
            // Who invited: the actor, looked up with a service token (degraded when unknown).
            let inviter = match event.actor.as_deref().and_then(|a| a.parse::<i32>().ok()) {
                Some(id) => {
                    let ctx = service_context(&deps.keys, tenant, &event.id)?;
                    deps.clients.auth.user_basic(&ctx, id).await.ok().map(|u| u.full_name()).filter(|n| !n.is_empty())
                }
                None => None,
            };
            let link = format!("{}/register?invitation={}", deps.config.app_base_url, percent_encode(token));
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
            send_system_email(deps, tx, event, SystemEmail { kind: "invitation", to: &invitation.email, subject: &subject, text, html }).await
        })
    }
}

/// Payload of `user.password_reset_requested` (UserBasicInfo + the reset token).
#[derive(Debug, Deserialize)]
struct ResetPayload {
    email: String,
    #[serde(default)]
    first_name: String,
    reset_token: String,
    expires_at: DateTime<Utc>,
}

pub struct ResetRequested(Arc<ConsumerDeps>);

impl EventHandler for ResetRequested {
    fn handle<'a>(&'a self, tx: &'a TenantTx<'a>, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let deps = &self.0;
            let reset: ResetPayload = event.data_as()?;
            let link = format!("{}/reset-password?token={}", deps.config.app_base_url, percent_encode(&reset.reset_token));
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
            send_system_email(deps, tx, event, SystemEmail { kind: "password_reset", to: &reset.email, subject, text, html }).await
        })
    }
}

pub struct DeliverEmail(Arc<ConsumerDeps>);

impl EventHandler for DeliverEmail {
    fn handle<'a>(&'a self, tx: &'a TenantTx<'a>, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let deps = &self.0;
            let queued: EmailEvent = event.data_as()?;
            let Some(row) = repo::queued_email_for_update(tx, queued.email_id).await? else {
                // Sent already, or deleted with its tenant data.
                return Ok(());
            };
            let token = deps.tracker.token(tx.tenant_id(), row.email.id);
            let email = OutgoingEmail {
                message_id: row.email.message_id.clone().unwrap_or_else(|| format!("{}@{}", ulid::Ulid::generate(), deps.config.message_id_domain())),
                to: row.email.email_address.clone(),
                subject: row.email.subject.clone(),
                text: row.body_text,
                html: row.body_html.map(|html| deps.tracker.instrument_html(&html, &token)),
            };
            deps.mailer.send(&email).await?;
            let sent = repo::mark_sent(tx, row.email.id, Utc::now()).await?;
            publish(tx, "email.sent", sent.sender_id, email_event(&sent)).await.map_err(|e| HandlerError::msg(e.to_string()))?;
            Ok(())
        })
    }
}
