//! The NATS subjects (and event `type`s) communication-service publishes: one constant each,
//! used by the producer and by every consumer. Payload types are beside them in this crate;
//! `docs/asyncapi.yaml` documents each.

pub const ACTIVITY_LOGGED: &str = "activity.logged";
pub const EMAIL_QUEUED: &str = "email.queued";
pub const EMAIL_SENT: &str = "email.sent";
pub const EMAIL_OPENED: &str = "email.opened";
pub const EMAIL_CLICKED: &str = "email.clicked";
/// A recipient unsubscribed with the one-click link of a marketing email
/// ([`crate::EmailUnsubscribed`]).
pub const EMAIL_UNSUBSCRIBED: &str = "email.unsubscribed";
/// A task's `reminder_at` came ([`crate::TaskReminderDue`]); sent once per reminder time.
pub const TASK_REMINDER_DUE: &str = "task.reminder_due";

/// A webhook was registered ([`crate::WebhookEvent`]; never the secret).
pub const WEBHOOK_CREATED: &str = "webhook.created";
/// A webhook's URL, events, description or status changed ([`crate::WebhookEvent`]).
pub const WEBHOOK_UPDATED: &str = "webhook.updated";
/// A webhook was deleted with its deliveries ([`crate::WebhookEvent`]).
pub const WEBHOOK_DELETED: &str = "webhook.deleted";
/// A webhook's signing secret was rotated ([`crate::WebhookEvent`]).
pub const WEBHOOK_SECRET_ROTATED: &str = "webhook.secret_rotated";
/// A webhook failing without a success for `WEBHOOK_DISABLE_AFTER_MS` was disabled
/// ([`crate::WebhookEvent`] with `reason` and `failing_since`); its deliveries are kept.
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";

/// A note was written ([`crate::NoteEvent`], issue 16).
pub const NOTE_CREATED: &str = "note.created";
/// A note's body or links changed ([`crate::NoteEvent`] plus `changes`: `{field: {old, new}}`).
pub const NOTE_UPDATED: &str = "note.updated";
/// A note was deleted by a user ([`crate::NoteEvent`], the note as it was). Notes removed
/// because their record was erased or deleted for good publish nothing (that record's
/// `*.deleted` is the event).
pub const NOTE_DELETED: &str = "note.deleted";

/// A file was uploaded ([`crate::Attachment`], issue 16).
pub const ATTACHMENT_CREATED: &str = "attachment.created";
/// A file was deleted by a user ([`crate::Attachment`], as it was). Files removed because
/// their record was erased or deleted for good publish nothing (that record's `*.deleted` is
/// the event).
pub const ATTACHMENT_DELETED: &str = "attachment.deleted";

/// Every subject above.
pub const ALL: &[&str] = &[ACTIVITY_LOGGED, EMAIL_QUEUED, EMAIL_SENT, EMAIL_OPENED, EMAIL_CLICKED, EMAIL_UNSUBSCRIBED, TASK_REMINDER_DUE, WEBHOOK_CREATED, WEBHOOK_UPDATED, WEBHOOK_DELETED, WEBHOOK_SECRET_ROTATED, WEBHOOK_DISABLED, NOTE_CREATED, NOTE_UPDATED, NOTE_DELETED, ATTACHMENT_CREATED, ATTACHMENT_DELETED];
