//! Webhook shapes of communication-service (issue 15): endpoints integrators register, their
//! deliveries, and the payloads of the `webhook.*` events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// `POST /webhooks`: where to deliver and which events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http` or `https` URL, at most 2048 characters; its host must not resolve to a
    /// loopback, private, link-local, unique-local, multicast or unspecified address (unless
    /// the operator lists it in `WEBHOOK_ALLOWED_HOSTS`).
    pub url: String,
    /// 1-50 event types: exact (`deal.closed_won`), a family (`contact.*`) or everything (`*`).
    pub events: Vec<String>,
    /// Free text, at most 500 characters.
    pub description: Option<String>,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /webhooks/{id}`: only the fields present change (`description: null` clears it).
/// `"enabled": true` re-enables a disabled webhook: its parked deliveries are retried with a
/// fresh retry window; `false` disables it (deliveries wait, nothing is dropped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// A registered webhook (the signing secret is never shown again after creation or rotation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: i32,
    pub url: String,
    pub description: Option<String>,
    /// The subscribed event types (exact, `family.*` or `*`).
    pub events: Vec<String>,
    /// `active` or `disabled` (by an admin, or automatically after failing for days).
    pub status: String,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why it was disabled, e.g. "failing since 2026-11-27T10:00:00Z".
    pub disabled_reason: Option<String>,
    /// First failed attempt since the last successful one (`null` while healthy).
    pub failing_since: Option<DateTime<Utc>>,
    /// Created for an automation rule's `{"type": "webhook", "url": ...}` action: subscribed
    /// to no events, it receives only what rules send.
    pub for_rules: bool,
    pub created_by: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A webhook with its signing secret: the answer of `POST /webhooks` and
/// `POST /webhooks/{id}/rotate-secret`, the only times the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_<base64 of 32 random bytes>` (Standard Webhooks): verify `webhook-signature`
    /// with it. After a rotation the previous secret also signs for 24 hours.
    pub secret: String,
}

/// One delivery of one event to one webhook, with the outcome of its latest attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: i64,
    pub webhook_id: i32,
    /// The `webhook-id` header: the same on every attempt and redelivery.
    pub message_id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending` (due at `next_attempt_at`), `succeeded`, or `failed` (parked after 3 days
    /// of retries; redeliver to try again).
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// HTTP status of the latest attempt (`null`: no answer, see `error`).
    pub response_status: Option<i32>,
    /// Duration of the latest attempt, milliseconds.
    pub latency_ms: Option<i32>,
    /// Why the latest attempt failed (`null` after a success).
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Payload of `webhook.created`, `webhook.updated`, `webhook.deleted`,
/// `webhook.secret_rotated` and `webhook.disabled` (never the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookEvent {
    pub webhook_id: i32,
    pub url: String,
    pub events: Vec<String>,
    pub status: String,
    /// `webhook.disabled`: why (e.g. failing without a success since a time).
    pub reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
}
