//! Wake-ups of the outbox relay, sent after a transaction that wrote outbox rows commits.
//!
//! The durable signal is the marker row `publish` writes into `platform.outbox_pending` in the
//! same transaction as the events; the relay's periodic sweep reads those. This module only
//! makes the relay come at once instead of at the next sweep: every relay of this process is
//! told directly, and one core NATS message on [`OUTBOX_WAKEUP_SUBJECT`] (payload: the schema
//! name) tells the relays of the other instances. Best effort by design: a lost wake-up costs
//! latency up to one sweep interval, never an event.
//!
//! Why not `NOTIFY` (what a trigger did before): on a Citus cluster the tenant's tables live
//! on a worker, so the notification is raised where no relay listens, and a transaction that
//! has sent `NOTIFY` cannot be prepared for two-phase commit.

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::mpsc;

/// Core NATS subject of the wake-up (not captured by the `CRM` stream: nothing is stored).
pub const OUTBOX_WAKEUP_SUBJECT: &str = "crm.outbox.pending";
/// Header naming the process that sent a wake-up, so its own relays (already told in
/// process) skip the echo.
const ORIGIN_HEADER: &str = "Crm-Origin";

/// A relay running in this process: its NATS client and the channel it is woken through.
pub(crate) struct Listener {
    pub(crate) nats: async_nats::Client,
    pub(crate) signals: mpsc::Sender<String>,
}

static LISTENERS: Mutex<Vec<Weak<Listener>>> = Mutex::new(Vec::new());

/// This process's id in the origin header (random per process).
pub(crate) fn origin() -> &'static str {
    static ORIGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(|| ulid::Ulid::generate().to_string())
}

/// Registers a relay; it stays registered while the returned handle lives.
pub(crate) fn register(listener: Listener) -> Arc<Listener> {
    let listener = Arc::new(listener);
    let mut listeners = LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
    listeners.retain(|l| l.strong_count() > 0);
    listeners.push(Arc::downgrade(&listener));
    listener
}

/// Called by `crm_tenant` after a transaction holding outbox rows of `schema` committed.
pub(crate) fn after_commit(schema: &str) {
    let listeners: Vec<Arc<Listener>> = {
        let mut all = LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|l| l.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    let Some(first) = listeners.first() else {
        // No relay in this process (a CLI command): the marker row waits for a sweep.
        return;
    };
    for listener in &listeners {
        // A full channel means that relay is busy; the marker row keeps the schema for it.
        let _ = listener.signals.try_send(schema.to_owned());
    }
    let nats = first.nats.clone();
    let schema = schema.to_owned();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(ORIGIN_HEADER, origin());
            if let Err(e) = nats.publish_with_headers(OUTBOX_WAKEUP_SUBJECT, headers, schema.into()).await {
                tracing::debug!(error = %e, "outbox wake-up not sent; other instances sweep");
            }
        });
    }
}

/// Whether a received wake-up came from this process (its relays were told directly).
pub(crate) fn is_own(message: &async_nats::Message) -> bool {
    message.headers.as_ref().and_then(|h| h.get(ORIGIN_HEADER)).is_some_and(|v| v.as_str() == origin())
}
