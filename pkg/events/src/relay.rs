use std::collections::{HashMap, HashSet};
use std::future::{Future, IntoFuture};
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use crm_tenant::{DbError, PlatformTx, SchemaName, Scoped, TenantDb, TenantId, TenantTx};
use deadpool_postgres::Pool;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::wakeup;
/// Header carrying the tenant id next to JetStream's `Nats-Msg-Id`.
pub const TENANT_HEADER: &str = "Crm-Tenant-Id";
const PLATFORM_SCHEMA: &str = "platform";
const MIN_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows per transaction, and so publish acks awaited together.
    pub batch_size: i64,
    /// How often `platform.outbox_pending` is read, for wake-ups that were missed.
    pub sweep_interval: Duration,
    /// How long one publish waits for JetStream's ack before the row counts as failed.
    pub ack_timeout: Duration,
    /// Cap of the exponential back-off after a failure (per schema, and for reconnects).
    pub max_backoff: Duration,
    /// Restricts the relay to these schemas (tests; a relay dedicated to a busy tenant).
    /// `None`: every schema with pending events.
    pub only_schemas: Option<HashSet<String>>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 200,
            sweep_interval: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(5),
            only_schemas: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("not an outbox schema: {0:?}")]
    InvalidSchema(String),
    #[error("database unavailable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Scoped(#[from] DbError),
    #[error("{failed} of {total} events not acknowledged by JetStream: {first}")]
    Publish { failed: usize, total: usize, first: String },
}

/// A schema with an outbox: `platform` or a validated tenant schema (the name comes from a
/// notification payload or a table, and is bound as a parameter, never spliced into SQL).
enum OutboxSchema {
    Platform,
    Tenant(SchemaName),
}

impl OutboxSchema {
    fn parse(name: &str) -> Result<Self, RelayError> {
        if name == PLATFORM_SCHEMA {
            return Ok(Self::Platform);
        }
        SchemaName::parse(name).map(Self::Tenant).map_err(|_| RelayError::InvalidSchema(name.to_owned()))
    }

    fn name(&self) -> &str {
        match self {
            Self::Platform => PLATFORM_SCHEMA,
            Self::Tenant(schema) => schema.as_str(),
        }
    }

    /// A tenant schema's own id is authoritative; platform events name their tenant in the payload.
    fn tenant_id(&self) -> Option<TenantId> {
        match self {
            Self::Platform => None,
            Self::Tenant(schema) => Some(schema.tenant_id()),
        }
    }
}

/// Publishes every unpublished outbox row of `schema` to JetStream and marks it published;
/// returns how many were published. Safe to run concurrently with other relays
/// (`FOR UPDATE SKIP LOCKED`). On a failed publish the rows stay unpublished (with `attempts`
/// and `last_error` updated), the schema is marked pending again and the error is returned.
/// A schema that no longer exists (tenant deleted) is forgotten silently.
pub async fn drain_schema(
    pool: &Pool,
    js: &jetstream::Context,
    schema: &str,
    config: &RelayConfig,
) -> Result<usize, RelayError> {
    let schema = OutboxSchema::parse(schema)?;
    let client = pool.get().await?;
    // Committed before the rows are read: an insert from now on sets the marker again.
    let unmark = client.prepare_cached("DELETE FROM platform.outbox_pending WHERE schema_name = $1").await?;
    client.execute(&unmark, &[&schema.name()]).await?;
    let exists = client.prepare_cached("SELECT to_regnamespace($1) IS NOT NULL").await?;
    if !client.query_one(&exists, &[&schema.name()]).await?.get::<_, bool>(0) {
        return Ok(0);
    }

    drop(client);
    let db = TenantDb::new(pool.clone());
    let mut total = 0;
    loop {
        match publish_batch(&db, js, &schema, config).await {
            Ok((published, more)) => {
                total += published;
                if !more {
                    return Ok(total);
                }
            }
            Err(err) => {
                if !matches!(err, RelayError::Publish { .. }) {
                    // The batch rolled back with the marker deleted: put it back (best effort;
                    // the caller retries the schema from memory anyway).
                    if let Err(mark_err) = mark_pending(pool, schema.name()).await {
                        tracing::debug!(schema = schema.name(), error = %mark_err, "cannot re-mark outbox pending");
                    }
                }
                return Err(err);
            }
        }
    }
}

async fn mark_pending(pool: &Pool, schema: &str) -> Result<(), RelayError> {
    let client = pool.get().await?;
    let stmt = client.prepare_cached(MARK_PENDING).await?;
    client.execute(&stmt, &[&schema]).await?;
    Ok(())
}

/// Marker rows are insert-only (see `crate::outbox`): the drain deletes those committed
/// before it reads the rows, a marker committed later stays for the next round.
const MARK_PENDING: &str = "INSERT INTO platform.outbox_pending (schema_name) VALUES ($1)";

/// One transaction: lock a batch, publish it, await the acks, mark what was acked. Returns the
/// number published and whether the batch was full (so more rows may be waiting).
async fn publish_batch(
    db: &TenantDb,
    js: &jetstream::Context,
    schema: &OutboxSchema,
    config: &RelayConfig,
) -> Result<(usize, bool), RelayError> {
    // Scoped by crm_tenant like any request's transaction.
    let tx = match schema.tenant_id() {
        Some(tenant) => ScopedTx::Tenant(db.tenant(&tenant).await?),
        None => ScopedTx::Platform(db.platform().await?),
    };
    let select = tx
        .prepare_cached(
            "SELECT id, subject, payload::text, payload->>'tenant_id' FROM outbox \
             WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .await?;
    let rows = tx.query(&select, &[&config.batch_size]).await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok((0, false));
    }

    let own_tenant = schema.tenant_id().map(|t| t.to_string());
    // Sent one by one to keep the outbox order in the stream; the acks are awaited together.
    let mut acks = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: &str = row.get(0);
        let subject: &str = row.get(1);
        let payload: String = row.get(2);
        let mut message = PublishMessage::build().payload(payload.into()).message_id(id);
        if let Some(tenant) = own_tenant.clone().or_else(|| row.get::<_, Option<String>>(3)) {
            message = message.header(TENANT_HEADER, tenant.as_str());
        }
        let sent = js.send_publish(subject.to_owned(), message).await;
        acks.push(async move {
            let ack = sent.map_err(|e| e.to_string())?;
            match tokio::time::timeout(config.ack_timeout, ack.into_future()).await {
                Ok(Ok(ack)) => Ok(ack.duplicate),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out waiting for the publish ack".to_owned()),
            }
        });
    }
    let results = futures::future::join_all(acks).await;

    let mut published = Vec::with_capacity(rows.len());
    let mut failed = Vec::new();
    let mut first_error = None;
    let mut duplicates = 0;
    for (row, result) in rows.iter().zip(results) {
        let id: &str = row.get(0);
        match result {
            Ok(duplicate) => {
                duplicates += usize::from(duplicate);
                published.push(id);
            }
            Err(e) => {
                first_error.get_or_insert(e);
                failed.push(id);
            }
        }
    }
    if !published.is_empty() {
        let mark = tx.prepare_cached("UPDATE outbox SET published_at = now() WHERE id = ANY($1)").await?;
        tx.execute(&mark, &[&published]).await?;
    }
    if let Some(first) = first_error {
        let note = tx
            .prepare_cached("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1)")
            .await?;
        let error: String = first.chars().take(500).collect();
        tx.execute(&note, &[&failed, &error]).await?;
        let remark = tx.prepare_cached(MARK_PENDING).await?;
        tx.execute(&remark, &[&schema.name()]).await?;
        tx.commit().await?;
        return Err(RelayError::Publish { failed: failed.len(), total: rows.len(), first: error });
    }
    tx.commit().await?;
    if duplicates > 0 {
        tracing::debug!(schema = schema.name(), duplicates, "re-published events were de-duplicated by JetStream");
    }
    Ok((published.len(), rows.len() as i64 >= config.batch_size))
}

/// The transaction of one outbox batch: a tenant's or the platform's.
enum ScopedTx {
    Tenant(TenantTx),
    Platform(PlatformTx),
}

impl std::ops::Deref for ScopedTx {
    type Target = Scoped;
    fn deref(&self) -> &Self::Target {
        match self {
            Self::Tenant(tx) => tx,
            Self::Platform(tx) => tx,
        }
    }
}

impl ScopedTx {
    async fn commit(self) -> Result<(), DbError> {
        match self {
            Self::Tenant(tx) => tx.commit().await,
            Self::Platform(tx) => tx.commit().await,
        }
    }
}

/// The outbox relay: a system task started once per service instance (any number of
/// instances may run). Woken right after a transaction with events commits (directly when
/// it committed in this process, by a core NATS message on [`crate::OUTBOX_WAKEUP_SUBJECT`]
/// from other instances), with a periodic sweep of `platform.outbox_pending` for wake-ups
/// that were missed. No database connection is held for listening.
pub struct OutboxRelay {
    pool: Pool,
    js: jetstream::Context,
    config: RelayConfig,
}

impl OutboxRelay {
    /// A relay publishing through `js`; its NATS client also carries the wake-ups.
    /// (`_listen` is no longer used: wake-ups do not travel by `LISTEN`/`NOTIFY` since the
    /// outbox works on a Citus cluster; kept so existing callers compile unchanged.)
    pub fn new(pool: Pool, _listen: tokio_postgres::Config, js: jetstream::Context, config: RelayConfig) -> Self {
        Self::with_nats(pool, js, config)
    }

    /// A relay publishing through `js`; its NATS client also carries the wake-ups.
    pub fn with_nats(pool: Pool, js: jetstream::Context, config: RelayConfig) -> Self {
        Self { pool, js, config }
    }

    /// Runs until `shutdown` completes. Errors are logged and retried with back-off, never
    /// returned: an outage of Postgres or NATS delays events, it does not stop the relay.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (signal_tx, mut signals) = mpsc::channel::<String>(1024);
        let nats = self.js.client();
        // Registered for wake-ups of this process's commits while `run` lives.
        let _registration = wakeup::register(wakeup::Listener { nats: nats.clone(), signals: signal_tx.clone() });
        let _remote = AbortOnDrop(tokio::spawn(remote_wakeups(nats, signal_tx, self.config.max_backoff)));
        let mut shutdown = std::pin::pin!(shutdown);
        let mut sweep = tokio::time::interval(self.config.sweep_interval);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // schema -> not before; a schema that failed keeps its deadline when signalled again,
        // so writes during a NATS outage do not turn into a busy loop.
        let mut pending: HashMap<String, Instant> = HashMap::new();
        let mut failures: HashMap<String, Backoff> = HashMap::new();
        let mut nats_down = Backoff::new(MIN_BACKOFF, self.config.max_backoff);

        loop {
            let now = Instant::now();
            let ready: Vec<String> = pending.iter().filter(|(_, at)| **at <= now).map(|(s, _)| s.clone()).collect();
            if ready.is_empty() {
                let next_retry = pending.values().min().copied();
                tokio::select! {
                    _ = &mut shutdown => return,
                    Some(schema) = signals.recv() => {
                        let mut schema = Some(schema);
                        while let Some(name) = schema {
                            self.add(&mut pending, name);
                            schema = signals.try_recv().ok();
                        }
                    }
                    _ = sweep.tick() => self.sweep(&mut pending).await,
                    _ = sleep_until(next_retry), if next_retry.is_some() => {}
                }
                continue;
            }
            if self.js.client().connection_state() != async_nats::connection::State::Connected {
                // Known to be down: wait without spending an ack timeout per schema.
                let delay = nats_down.next_delay();
                tracing::warn!(retry_in_ms = delay.as_millis() as u64, "NATS unreachable; outbox relay waiting");
                let at = Instant::now() + delay;
                ready.into_iter().for_each(|schema| {
                    pending.insert(schema, at);
                });
                continue;
            }
            nats_down.reset();
            for schema in ready {
                if (&mut shutdown).now_or_never().is_some() {
                    return;
                }
                pending.remove(&schema);
                match drain_schema(&self.pool, &self.js, &schema, &self.config).await {
                    Ok(published) => {
                        failures.remove(&schema);
                        if published > 0 {
                            tracing::debug!(schema, published, "outbox drained");
                        }
                    }
                    Err(RelayError::InvalidSchema(_)) => {
                        tracing::debug!(schema, "ignoring outbox signal for a schema that is not an outbox schema");
                    }
                    Err(err) => {
                        let delay = failures
                            .entry(schema.clone())
                            .or_insert_with(|| Backoff::new(MIN_BACKOFF, self.config.max_backoff))
                            .next_delay();
                        tracing::warn!(schema, error = %err, retry_in_ms = delay.as_millis() as u64, "outbox relay failed; will retry");
                        pending.insert(schema, Instant::now() + delay);
                    }
                }
            }
        }
    }

    async fn sweep(&self, pending: &mut HashMap<String, Instant>) {
        let result: Result<Vec<String>, RelayError> = async {
            let client = self.pool.get().await?;
            let stmt = client.prepare_cached("SELECT DISTINCT schema_name FROM platform.outbox_pending").await?;
            Ok(client.query(&stmt, &[]).await?.iter().map(|r| r.get(0)).collect())
        }
        .await;
        match result {
            Ok(schemas) => schemas.into_iter().for_each(|s| self.add(pending, s)),
            Err(err) => tracing::warn!(error = %err, "outbox sweep failed"),
        }
    }
}

fn add(pending: &mut HashMap<String, Instant>, schema: String) {
    pending.entry(schema).or_insert_with(Instant::now);
}

impl OutboxRelay {
    fn add(&self, pending: &mut HashMap<String, Instant>, schema: String) {
        if self.config.only_schemas.as_ref().is_none_or(|only| only.contains(&schema)) {
            add(pending, schema);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Forwards wake-ups sent by other instances (core NATS, [`crate::OUTBOX_WAKEUP_SUBJECT`];
/// the payload is a schema name, validated when drained) to the relay. async-nats
/// resubscribes after a reconnect; wake-ups missed meanwhile are found by the sweep.
async fn remote_wakeups(nats: async_nats::Client, signals: mpsc::Sender<String>, max_backoff: Duration) {
    let mut backoff = Backoff::new(MIN_BACKOFF, max_backoff);
    loop {
        match nats.subscribe(wakeup::OUTBOX_WAKEUP_SUBJECT).await {
            Ok(mut subscription) => {
                backoff.reset();
                while let Some(message) = subscription.next().await {
                    if wakeup::is_own(&message) {
                        continue;
                    }
                    if let Ok(schema) = std::str::from_utf8(&message.payload) {
                        // A full channel means the relay is busy; the marker row keeps the schema.
                        let _ = signals.try_send(schema.to_owned());
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "outbox wake-ups not subscribed; relying on the sweep"),
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_platform_and_tenant_schemas_are_drained() {
        assert!(matches!(OutboxSchema::parse("platform"), Ok(OutboxSchema::Platform)));
        let tenant = TenantId::new();
        let parsed = OutboxSchema::parse(tenant.schema().as_str()).unwrap();
        assert_eq!(parsed.tenant_id(), Some(tenant));
        assert_eq!(parsed.name(), tenant.schema().as_str());
        for bad in ["public", "", "pg_catalog", "tenant_x", "platform; drop table x"] {
            assert!(matches!(OutboxSchema::parse(bad), Err(RelayError::InvalidSchema(_))), "{bad}");
        }
    }

    #[test]
    fn a_deferred_schema_keeps_its_deadline_when_signalled_again() {
        let mut pending = HashMap::new();
        let later = Instant::now() + Duration::from_secs(5);
        pending.insert("platform".to_owned(), later);
        add(&mut pending, "platform".to_owned());
        assert_eq!(pending["platform"], later);
        add(&mut pending, "other".to_owned());
        assert!(pending["other"] <= Instant::now());
    }
}
