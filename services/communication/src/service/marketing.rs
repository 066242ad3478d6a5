//! Marketing email (sequence steps, rule emails): a template rendered for a contact and
//! queued through the ordinary email path (activity logged, `email.queued`, delivered with
//! tracking by the delivery consumer), plus what makes it marketing: the contact's consent
//! under the tenant's policy is checked right before (seed 002 compliance; `opt_in` needs
//! `granted`, `opt_out` sends unless `withdrawn`), an address that unsubscribed here is
//! never mailed again, and delivery adds the one-click unsubscribe (RFC 8058).

use std::time::{Duration, Instant};

use chrono::Utc;
use crm_client_communication::EmailStatus;
use crm_client_communication::subjects::{ACTIVITY_LOGGED, EMAIL_QUEUED};
use crm_client_core::ClientError;
use crm_events::{Envelope, enqueue};
use crm_tenant::{DbError, TenantId, TenantTx};
use crm_web::{AuthUser, Claims, Role, TokenType};

use crate::AppState;
use crate::compose::{self, Content};
use crate::domain::{ActivityWrite, MAX_SUBJECT};
use crate::repo::emails::{self as email_repo, EmailWrite};
use crate::repo::{activities as activity_repo, references as gone_repo, rules as lineage, templates as template_repo, unsubscribes};

/// What became of a marketing email.
#[derive(Debug)]
pub enum Outcome {
    /// Queued for delivery (sent by the delivery consumer).
    Queued(EmailStatus),
    /// Not sent, for this reason (`no_consent`, `unsubscribed`, `no_email`,
    /// `contact_deleted`, `template_inactive`, `template_deleted`, `already_sent`).
    Skipped(&'static str),
}

/// A failure worth retrying (a service down, the database); the message is recorded.
#[derive(Debug)]
pub struct Retry(pub String);

impl From<DbError> for Retry {
    fn from(e: DbError) -> Self {
        Self(format!("database: {e}"))
    }
}

impl From<crm_events::PublishError> for Retry {
    fn from(e: crm_events::PublishError) -> Self {
        Self(format!("event: {e}"))
    }
}

/// How long a tenant's consent policy is trusted (contract: at most 60 s).
const POLICY_TTL: Duration = Duration::from_secs(30);

/// Whether the tenant's `marketing_consent_policy` is `opt_in` (its settings, cached
/// briefly in this instance).
pub async fn opt_in(state: &AppState, tenant: &TenantId) -> Result<bool, Retry> {
    if let Some((at, opt_in)) = state.automation.policy(tenant)
        && at.elapsed() < POLICY_TTL
    {
        return Ok(opt_in);
    }
    let ctx = super::emails::service_context(&state.auth.keys, tenant, "consent-policy").map_err(|e| Retry(e.to_string()))?;
    let settings = state.tenants.settings(&ctx, &tenant.to_string()).await.map_err(|e| Retry(format!("cannot read the tenant's consent policy: {e}")))?;
    let opt_in = settings.marketing_consent_policy.is_opt_in();
    state.automation.set_policy(tenant, Instant::now(), opt_in);
    Ok(opt_in)
}

/// A token and caller for work with no request behind it, in the name of `sender` (a user
/// id, for the sender's names in templates; 0 when none): role `service` (lookups only).
pub fn system_caller(state: &AppState, tenant: &TenantId, sender: Option<i32>, request_id: &str) -> Result<(crm_client_core::CallContext, AuthUser), Retry> {
    let claims = Claims::new(TokenType::Access, sender.unwrap_or(0), *tenant, crate::SERVICE, Role::Service, state.auth.keys.issuer(), Duration::from_secs(60));
    let token = state.auth.keys.issue(&claims).map_err(|e| Retry(format!("cannot sign a service token: {e}")))?;
    let user = AuthUser::from_claims(claims).map_err(|e| Retry(format!("service caller: {e}")))?;
    Ok((crm_client_core::CallContext::new(token).with_request_id(request_id), user))
}

/// Renders template `template_id` for the contact (and deal) and queues it, in `tx`, unless
/// consent, an unsubscribe, the contact or the template rule it out. `key` makes it
/// idempotent (one email per key, e.g. one per sequence step). `depth`: the rule chain depth
/// carried by the events it causes (for rules).
#[allow(clippy::too_many_arguments)]
pub async fn queue(
    state: &AppState,
    tx: &TenantTx,
    template_id: i32,
    contact_id: i32,
    deal_id: Option<i32>,
    sender: Option<i32>,
    key: &str,
    depth: Option<i32>,
) -> Result<Outcome, Retry> {
    let tenant = *tx.tenant_id();
    let Some(template) = template_repo::by_id(tx, template_id).await? else { return Ok(Outcome::Skipped("template_deleted")) };
    if !template.template.is_active {
        return Ok(Outcome::Skipped("template_inactive"));
    }
    let (contact_gone, _, deal_gone) = gone_repo::which_gone(tx, Some(contact_id), None, deal_id).await?;
    if contact_gone {
        return Ok(Outcome::Skipped("contact_deleted"));
    }
    let deal_id = deal_id.filter(|_| !deal_gone);
    let (ctx, user) = system_caller(state, &tenant, sender, key)?;
    let context = match compose::gather(&state.clients, &ctx, &user, Some(contact_id), deal_id).await {
        Ok(c) => c,
        Err(e) if e.status() == axum::http::StatusCode::UNPROCESSABLE_ENTITY => {
            // The contact (or deal) does not exist.
            let deal_only = e.details().is_some_and(|d| d["fields"].get("deal_id").is_some());
            if deal_only {
                compose::gather(&state.clients, &ctx, &user, Some(contact_id), None).await.map_err(|e| Retry(e.message().to_owned()))?
            } else {
                return Ok(Outcome::Skipped("contact_deleted"));
            }
        }
        Err(e) => return Err(Retry(e.message().to_owned())),
    };
    let Some(contact) = context.contact else { return Ok(Outcome::Skipped("contact_deleted")) };
    let address = contact.email.trim().to_owned();
    if address.is_empty() {
        return Ok(Outcome::Skipped("no_email"));
    }
    if !contact.marketing_consent.allows_marketing(opt_in(state, &tenant).await?) {
        return Ok(Outcome::Skipped("no_consent"));
    }
    if unsubscribes::address_unsubscribed(tx, &address).await? {
        return Ok(Outcome::Skipped("unsubscribed"));
    }
    let content = Content { subject: template.template.subject, body_html: template.body_html, body_text: Some(template.body_text).filter(|t| !t.is_empty()) };
    let rendered = compose::render_content(&content, &context.values).map_err(|e| Retry(format!("template {template_id}: {}", e.message())))?;
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
        owner_id: sender.or(contact.owner_id),
        custom_fields: Default::default(),
        needs_review: false,
    };
    let message_id = format!("{}@{}", ulid::Ulid::generate(), state.settings.message_id_domain());
    let write = EmailWrite {
        kind: "crm",
        status: "queued",
        activity_id: None,
        template_id: Some(template_id),
        contact_id: Some(contact.id),
        deal_id,
        sender_id: sender,
        email_address: &address,
        subject: &subject,
        body_html: Some(&rendered.body_html),
        body_text: Some(&rendered.body_text),
        message_id: &message_id,
        sent_at: None,
        source_event_id: Some(key),
        marketing: true,
    };
    let Some(mut email) = email_repo::insert(tx, &write).await? else { return Ok(Outcome::Skipped("already_sent")) };
    let logged = activity_repo::insert(tx, &activity, sender, None).await?.ok_or_else(|| Retry("activity insert returned no row".into()))?;
    email_repo::link_activity(tx, email.id, logged.id).await?;
    email.activity_id = Some(logged.id);
    let actor = sender.map(|s| s.to_string());
    let events = [
        Envelope::new(ACTIVITY_LOGGED, &tenant, actor.clone(), logged.info()).map_err(|e| Retry(e.to_string()))?,
        Envelope::new(EMAIL_QUEUED, &tenant, actor, super::emails::email_event(&email)).map_err(|e| Retry(e.to_string()))?,
    ];
    for event in &events {
        enqueue(tx, event).await?;
        if let Some(depth) = depth {
            lineage::put_depth(tx, &format!("event:{}", event.id), depth).await?;
        }
    }
    if let Some(depth) = depth {
        lineage::put_depth(tx, &format!("email:{}", email.id), depth).await?;
    }
    Ok(Outcome::Queued(email))
}

/// Whether a client error is the record being gone (not worth retrying).
pub fn is_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::NotFound)
}
