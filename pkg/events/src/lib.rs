//! Domain events (`ARCHITECTURE.md`, "Events").
//!
//! * [`Envelope`]: the JSON every event travels in; its id is JetStream's `Nats-Msg-Id`.
//! * [`enqueue`]: writes an event into the outbox of the caller's scoped transaction, so it
//!   exists if and only if the change commits.
//! * [`OutboxRelay`] / [`drain_schema`]: publish outbox rows to the `CRM` stream and mark them
//!   published. At-least-once; the stream's duplicate window absorbs re-publishes. Schemas
//!   with pending rows are found through marker rows in `platform.outbox_pending` (written by
//!   [`enqueue`] in the event's transaction), woken at once by a wake-up after commit
//!   (in process, and on [`OUTBOX_WAKEUP_SUBJECT`] for other instances), swept periodically.
//! * [`run_consumer`]: a durable pull consumer applying each event once per consumer
//!   (`processed_events` in the same transaction), retrying failures and parking them in
//!   `dead_letters` after `max_deliver`.
//! * [`subscribe_invalidations`]: every-instance fan-out for in-process caches.

mod backoff;
mod consumer;
mod envelope;
mod invalidate;
mod outbox;
mod relay;
mod stream;
mod wakeup;

pub use consumer::{ConsumerSpec, EventHandler, HandlerError, run_consumer};
pub use envelope::{Envelope, changes, current_request_id, with_request_id};
pub use invalidate::subscribe_invalidations;
pub use outbox::{OutboxWriter, PublishError, enqueue, publish, publish_many, publish_platform};
pub use relay::{OutboxRelay, RelayConfig, RelayError, TENANT_HEADER, drain_schema};
pub use wakeup::OUTBOX_WAKEUP_SUBJECT;
pub use stream::{DUPLICATE_WINDOW, STREAM_NAME, STREAM_SUBJECTS, ensure_stream, stream_config};
