//! The NATS subjects (and event `type`s) communication-service publishes: one constant each,
//! used by the producer and by every consumer. Payload types are beside them in this crate;
//! `docs/asyncapi.yaml` documents each.

pub const ACTIVITY_LOGGED: &str = "activity.logged";
pub const EMAIL_QUEUED: &str = "email.queued";
pub const EMAIL_SENT: &str = "email.sent";
pub const EMAIL_OPENED: &str = "email.opened";
pub const EMAIL_CLICKED: &str = "email.clicked";

/// Every subject above.
pub const ALL: &[&str] = &[ACTIVITY_LOGGED, EMAIL_QUEUED, EMAIL_SENT, EMAIL_OPENED, EMAIL_CLICKED];
