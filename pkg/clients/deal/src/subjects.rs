//! The NATS subjects (and event `type`s) deal-service publishes: one constant each,
//! used by the producer and by every consumer. Payload types are beside them in this crate;
//! `docs/asyncapi.yaml` documents each.

pub const DEAL_CREATED: &str = "deal.created";
pub const DEAL_UPDATED: &str = "deal.updated";
pub const DEAL_DELETED: &str = "deal.deleted";
pub const DEAL_STAGE_CHANGED: &str = "deal.stage_changed";
pub const DEAL_CLOSED_WON: &str = "deal.closed_won";
pub const DEAL_CLOSED_LOST: &str = "deal.closed_lost";
/// Issue 16 (trash): a deal moved to the trash (`DELETE /deals/{id}`); payload
/// [`crate::DealTrashed`]. `deal.deleted` keeps meaning "gone for good" (erased or purged).
pub const DEAL_TRASHED: &str = "deal.trashed";
/// Issue 16 (trash): a trashed deal restored; payload [`crate::DealBasicInfo`].
pub const DEAL_RESTORED: &str = "deal.restored";

/// Every subject above.
pub const ALL: &[&str] = &[DEAL_CREATED, DEAL_UPDATED, DEAL_DELETED, DEAL_STAGE_CHANGED, DEAL_CLOSED_WON, DEAL_CLOSED_LOST, DEAL_TRASHED, DEAL_RESTORED];
