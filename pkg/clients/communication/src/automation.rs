//! Automation shapes of communication-service (issue 15): email sequences and enrollments,
//! automation rules and their runs, and the payloads of the reminder and unsubscribe events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One step of a sequence: a template sent `delay_hours` after the previous step (the first
/// step: after the enrollment). `delay_minutes` is the same delay in minutes (finer delays
/// are given in minutes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SequenceStep {
    /// 1, 2, ... in sending order.
    pub position: i32,
    pub template_id: i32,
    /// Hours, possibly fractional when set with `delay_minutes`.
    pub delay_hours: f64,
    pub delay_minutes: i32,
}

/// An email sequence (`/sequences`): templates sent to an enrolled contact on a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sequence {
    pub id: i32,
    pub name: String,
    /// Empty when not set.
    pub description: String,
    /// An inactive sequence takes no new enrollments; running ones continue.
    pub is_active: bool,
    pub steps: Vec<SequenceStep>,
    /// Enrollments currently `active`.
    pub active_enrollments: i64,
    pub created_by: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The state of one step of an enrollment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentStep {
    pub position: i32,
    pub template_id: i32,
    /// scheduled, sent (the email was queued for delivery: see `email_id`), failed (after
    /// the retries; `error`), skipped (`reason`, e.g. `no_consent`), cancelled (the
    /// enrollment stopped first)
    pub status: String,
    /// When the step is (or was) due.
    pub due_at: DateTime<Utc>,
    pub attempts: i32,
    /// The next try of a scheduled step (later than `due_at` after a failed attempt).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// Why a step was skipped: `no_consent` (the tenant's marketing consent policy),
    /// `no_email` (the contact has no address), `template_inactive`, `template_deleted`.
    pub reason: Option<String>,
    /// The email of a sent step (`GET /emails/{id}`).
    pub email_id: Option<i32>,
    pub done_at: Option<DateTime<Utc>>,
}

/// A contact's enrollment in a sequence, with the state of every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Enrollment {
    pub id: i32,
    pub sequence_id: i32,
    pub contact_id: i32,
    pub deal_id: Option<i32>,
    /// active, completed, stopped
    pub status: String,
    /// Why it stopped: unenrolled, contact_deleted, unsubscribed, consent_withdrawn,
    /// sequence_deleted.
    pub stop_reason: Option<String>,
    /// The user who enrolled the contact (`null`: a rule did, see `rule_id`).
    pub enrolled_by: Option<i32>,
    pub rule_id: Option<i32>,
    pub steps: Vec<EnrollmentStep>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

/// An automation rule (`/automation/rules`): when an event of `trigger.event` matches the
/// conditions, the actions run (recorded as a run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub id: i32,
    pub name: String,
    /// Empty when not set.
    pub description: String,
    pub enabled: bool,
    /// `{"event": "deal.closed_won"}`
    #[schema(value_type = Object)]
    pub trigger: serde_json::Value,
    /// all (every condition holds) or any (one does)
    #[serde(rename = "match")]
    pub match_mode: String,
    /// `[{"field": "deal.value", "op": "gte", "value": 1000}]`: `field` is a dotted path into
    /// the event's `data`; op one of eq, ne, gt, gte, lt, lte, in, contains.
    #[schema(value_type = Vec<Object>)]
    pub conditions: serde_json::Value,
    /// `[{"type": "create_task", ...}, {"type": "send_email", "template_id": 3}, ...]`
    #[schema(value_type = Vec<Object>)]
    pub actions: serde_json::Value,
    pub created_by: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One run of a rule for one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleRun {
    pub id: i32,
    pub rule_id: i32,
    /// pending, succeeded, failed (will be retried at `next_attempt_at`), parked (retries
    /// exhausted: `POST /automation/runs/{id}/retry`), loop_stopped (the event was caused by
    /// rules too many levels deep; nothing ran)
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// How many rule runs led to this event (0: not caused by a rule).
    pub depth: i32,
    /// The triggering event (envelope).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    /// What each action did, e.g. `[{"type": "create_task", "task_id": 7}]`.
    #[schema(value_type = Vec<Object>)]
    pub results: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Payload of `task.reminder_due`: a task's reminder time came (the assignee is emailed too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskReminderDue {
    pub task_id: i32,
    pub title: String,
    pub assigned_to: i32,
    pub reminder_at: DateTime<Utc>,
    pub due_date: Option<DateTime<Utc>>,
    pub contact_id: Option<i32>,
    pub deal_id: Option<i32>,
}

/// Payload of `email.unsubscribed`: a recipient used the one-click unsubscribe of a
/// marketing email (contact-service withdraws the contact's marketing consent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmailUnsubscribed {
    pub email_id: i32,
    pub contact_id: Option<i32>,
    pub email_address: String,
}
