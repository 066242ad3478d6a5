use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use crm_tenant::{DbError, TenantDb, TenantId, TenantTx};
use deadpool_postgres::Pool;
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio_postgres::types::Json;

use crate::backoff::Backoff;
use crate::{Envelope, ensure_stream};

/// A durable pull consumer of the `CRM` stream.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Also the key of `processed_events` and `dead_letters`: keep it stable.
    pub durable_name: String,
    /// One subject (wildcards allowed). nats-server 2.9 silently ignores the plural
    /// `filter_subjects`, so a consumer that needs two subjects is two consumers.
    pub filter_subject: String,
    /// Deliveries before a failing event is parked in `dead_letters`.
    pub max_deliver: i64,
    /// Redelivery after this long without an ack (a hung handler or a lost instance).
    pub ack_wait: Duration,
    /// Delay before redelivery after the n-th failure (the last one repeats).
    pub backoff: Vec<Duration>,
}

impl ConsumerSpec {
    pub fn new(durable_name: impl Into<String>, filter_subject: impl Into<String>) -> Self {
        Self {
            durable_name: durable_name.into(),
            filter_subject: filter_subject.into(),
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            backoff: vec![Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(30)],
        }
    }

    /// The server-side configuration. `max_deliver` is enforced here, not by the server: a
    /// server that stops redelivering would drop an event whose parking failed (database down).
    fn consumer_config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable_name.clone()),
            filter_subject: self.filter_subject.clone(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: self.ack_wait,
            ..Default::default()
        }
    }

    /// `None`: give up and park the event.
    fn retry_delay(&self, delivered: i64) -> Option<Duration> {
        if delivered >= self.max_deliver {
            return None;
        }
        let index = usize::try_from(delivered.saturating_sub(1)).unwrap_or(0);
        Some(self.backoff.get(index).or(self.backoff.last()).copied().unwrap_or(Duration::ZERO))
    }
}

/// An error from a handler: the event is retried, then parked. Build it with `?` from any
/// error, or with [`HandlerError::msg`].
pub struct HandlerError(Box<dyn std::error::Error + Send + Sync>);

impl HandlerError {
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into().into())
    }
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Applies one event inside the transaction that also records it as processed, so it takes
/// effect exactly once. The transaction is scoped to the event's tenant; events the handler
/// emits go through [`crate::enqueue`] on the same `tx`.
///
/// ```
/// use crm_events::{Envelope, EventHandler, HandlerError};
/// use crm_tenant::TenantTx;
/// use futures::future::BoxFuture;
///
/// struct LogActivity;
///
/// impl EventHandler for LogActivity {
///     fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>> {
///         Box::pin(async move {
///             tx.execute("INSERT INTO activities (kind, event_id) VALUES ('deal_won', $1)", &[&event.id]).await?;
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait EventHandler: Send + Sync {
    fn handle<'a>(&'a self, tx: &'a TenantTx, event: &'a Envelope) -> BoxFuture<'a, Result<(), HandlerError>>;
}

#[derive(Debug, thiserror::Error)]
enum ProcessError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Query(#[from] tokio_postgres::Error),
    #[error("handler failed: {0}")]
    Handler(HandlerError),
}

enum Applied {
    Now,
    Before,
    TenantGone,
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Consumes `spec` until `shutdown` completes, one message at a time (per-subject order is
/// kept). NATS and Postgres outages are waited out: the subscription is recreated with
/// back-off, and unacked events are redelivered.
pub async fn run_consumer(
    pool: Pool,
    js: jetstream::Context,
    spec: ConsumerSpec,
    handler: Arc<dyn EventHandler>,
    shutdown: impl Future<Output = ()>,
) {
    let db = TenantDb::new(pool);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
    loop {
        let opened = tokio::select! {
            _ = &mut shutdown => return,
            opened = open(&js, &spec) => opened,
        };
        match opened {
            Ok(mut messages) => loop {
                let next = tokio::select! {
                    _ = &mut shutdown => return,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        backoff.reset();
                        let kind = process(&db, &spec, handler.as_ref(), &message).await;
                        if let Err(err) = message.ack_with(kind).await {
                            // Redelivered after ack_wait; processed_events makes that harmless.
                            tracing::warn!(consumer = spec.durable_name, error = %err, "cannot ack event");
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(consumer = spec.durable_name, error = %err, "event subscription failed; reopening");
                        break;
                    }
                    None => break,
                }
            },
            Err(err) => tracing::warn!(consumer = spec.durable_name, error = %err, "cannot open event consumer"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

async fn open(js: &jetstream::Context, spec: &ConsumerSpec) -> Result<pull::Stream, async_nats::Error> {
    let stream = ensure_stream(js).await?;
    let consumer: PullConsumer = stream.get_or_create_consumer(&spec.durable_name, spec.consumer_config()).await?;
    Ok(consumer.messages().await?)
}

/// What to answer JetStream for one delivery.
async fn process(db: &TenantDb, spec: &ConsumerSpec, handler: &dyn EventHandler, message: &jetstream::Message) -> AckKind {
    let consumer = spec.durable_name.as_str();
    let event: Envelope = match serde_json::from_slice(&message.payload) {
        Ok(event) => event,
        Err(err) => {
            tracing::warn!(consumer, subject = %message.subject, error = %err, "unparseable event dropped");
            return AckKind::Term;
        }
    };
    let Ok(tenant) = event.tenant() else {
        tracing::warn!(consumer, event_id = event.id, "event with an invalid tenant id dropped");
        return AckKind::Term;
    };
    let error = match apply(db, consumer, handler, &tenant, &event).await {
        Ok(Applied::Now | Applied::Before) => return AckKind::Ack,
        Ok(Applied::TenantGone) => {
            tracing::debug!(consumer, event_id = event.id, tenant = %tenant, "event of a deleted tenant skipped");
            return AckKind::Ack;
        }
        Err(err) => err,
    };
    let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
    if let Some(delay) = spec.retry_delay(delivered) {
        tracing::warn!(consumer, event_id = event.id, delivered, error = %error, "event failed; will retry");
        return AckKind::Nak(Some(delay));
    }
    match park(db, consumer, &tenant, &event, &error).await {
        Ok(()) => {
            tracing::error!(consumer, event_id = event.id, delivered, error = %error, "event parked in dead_letters");
            AckKind::Term
        }
        Err(park_err) => {
            tracing::warn!(consumer, event_id = event.id, error = %park_err, "cannot park failed event; will retry");
            AckKind::Nak(Some(MAX_BACKOFF))
        }
    }
}

async fn apply(
    db: &TenantDb,
    consumer: &str,
    handler: &dyn EventHandler,
    tenant: &TenantId,
    event: &Envelope,
) -> Result<Applied, ProcessError> {
    let tx = db.tenant(tenant).await?;
    let exists = tx.prepare_cached("SELECT to_regnamespace($1) IS NOT NULL").await?;
    if !tx.query_one(&exists, &[&tx.schema().as_str()]).await?.get::<_, bool>(0) {
        return Ok(Applied::TenantGone);
    }
    // Taken first: a concurrent delivery of the same event waits on this row, then sees it.
    let claim = tx
        .prepare_cached("INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .await?;
    if tx.execute(&claim, &[&consumer, &event.id]).await? == 0 {
        return Ok(Applied::Before);
    }
    handler.handle(&tx, event).await.map_err(ProcessError::Handler)?;
    tx.commit().await?;
    Ok(Applied::Now)
}

async fn park(
    db: &TenantDb,
    consumer: &str,
    tenant: &TenantId,
    event: &Envelope,
    error: &ProcessError,
) -> Result<(), ProcessError> {
    let tx = db.tenant(tenant).await?;
    // EXCLUDED.failed_at (the column default, evaluated with the row) rather than now(): Citus
    // refuses non-IMMUTABLE functions in DO UPDATE SET on distributed tables.
    let stmt = tx
        .prepare_cached(
            "INSERT INTO dead_letters (consumer, event_id, subject, payload, error) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (consumer, event_id) DO UPDATE \
             SET subject = EXCLUDED.subject, payload = EXCLUDED.payload, error = EXCLUDED.error, failed_at = EXCLUDED.failed_at",
        )
        .await?;
    let error: String = error.to_string().chars().take(2000).collect();
    tx.execute(&stmt, &[&consumer, &event.id, &event.r#type, &Json(event), &error]).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_backoff_then_park() {
        let mut spec = ConsumerSpec::new("c", "deal.closed_won");
        spec.backoff = vec![Duration::from_millis(10), Duration::from_millis(20)];
        spec.max_deliver = 4;
        let delays: Vec<_> = (1..=5).map(|n| spec.retry_delay(n)).collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(delays, [ms(10), ms(20), ms(20), None, None]);
        spec.backoff.clear();
        assert_eq!(spec.retry_delay(1), Some(Duration::ZERO));
    }

    #[test]
    fn server_config_is_durable_explicit_and_single_filtered() {
        let config = ConsumerSpec::new("comm-deal-won", "deal.closed_won").consumer_config();
        assert_eq!(config.durable_name.as_deref(), Some("comm-deal-won"));
        assert_eq!(config.filter_subject, "deal.closed_won");
        assert!(config.filter_subjects.is_empty());
        assert_eq!(config.ack_policy, AckPolicy::Explicit);
        assert_eq!(config.deliver_policy, DeliverPolicy::All);
    }

    #[test]
    fn handler_errors_convert_from_any_error() {
        fn fails() -> Result<(), HandlerError> {
            "x".parse::<i32>()?;
            Ok(())
        }
        assert!(fails().unwrap_err().to_string().contains("invalid digit"));
        assert_eq!(HandlerError::msg("boom").to_string(), "boom");
    }
}
