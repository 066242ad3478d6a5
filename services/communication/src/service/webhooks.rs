//! Webhooks for integrators (issue 15): endpoints subscribed to event types, a durable
//! delivery queue in the tenant schema, Standard Webhooks signing.
//!
//! CONTRACT for automation rules (issue 15, item 6; H-auto calls these, H-hooks keeps them
//! stable):
//!
//! ```ignore
//! /// Where a rule's `{"type":"webhook", ...}` action delivers.
//! pub enum WebhookTarget { Id(i32), Url(String) }
//!
//! /// Checks a rule's target when the rule is saved: the webhook exists (404 NOT_FOUND "webhook not found"
//! /// otherwise), or the URL is http(s) and passes the SSRF guard (422 naming `field`).
//! pub async fn check_rule_target(state: &AppState, tx: &TenantTx, target: &WebhookTarget, field: &str) -> Result<(), ApiError>;
//!
//! /// Enqueues ONE delivery of `event` (any envelope; sent as is, signed with the webhook's
//! /// secret) to the target, in the caller's transaction (it exists iff that commits), due
//! /// now. Idempotent per (webhook, `key`): a second call with the same key returns the
//! /// first delivery's id (use e.g. `format!("rule-run:{run_id}")`). A `Url` target is
//! /// delivered through a webhook row of that URL subscribed to no events (created on first
//! /// use, listed in GET /webhooks, its secret obtainable by rotate-secret). A disabled
//! /// webhook still gets the delivery queued (parked until re-enabled). Returns the delivery id.
//! pub async fn enqueue_for_rule(state: &AppState, tx: &TenantTx, target: &WebhookTarget, event: &Envelope, key: &str) -> Result<i64, ApiError>;
//! ```

use crm_events::Envelope;
use crm_tenant::TenantTx;
use crm_web::ApiError;

use crate::AppState;

/// Where an automation rule's `{"type":"webhook", ...}` action delivers: a registered
/// webhook by id, or a URL (delivered through a webhook row of that URL, see
/// [`enqueue_for_rule`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookTarget {
    Id(i32),
    Url(String),
}

/// Checks a rule's webhook target when the rule is saved (see the module comment).
pub async fn check_rule_target(_state: &AppState, _tx: &TenantTx, _target: &WebhookTarget, _field: &str) -> Result<(), ApiError> {
    Err(ApiError::not_implemented("webhooks are being built (issue 15)"))
}

/// Enqueues one delivery of `event` to `target` in the caller's transaction; returns the
/// delivery id (see the module comment for the contract).
pub async fn enqueue_for_rule(_state: &AppState, _tx: &TenantTx, _target: &WebhookTarget, _event: &Envelope, _key: &str) -> Result<i64, ApiError> {
    Err(ApiError::not_implemented("webhooks are being built (issue 15)"))
}
