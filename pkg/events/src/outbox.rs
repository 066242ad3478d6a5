use crm_tenant::{PlatformTx, TenantTx};
use crm_tenant::{DbError, Scoped};
use tokio_postgres::types::Json;

use crate::Envelope;

mod sealed {
    pub trait Sealed {}
}

/// A transaction whose search path is a schema holding an `outbox` table: only the scoped
/// transactions of `crm_tenant` qualify, so an event always lands in the outbox of the schema
/// the change was written to (sealed: no other implementations).
pub trait OutboxWriter: sealed::Sealed + Sync {
    #[doc(hidden)]
    fn outbox_tx(&self) -> &Scoped;
}

impl sealed::Sealed for TenantTx {}
impl OutboxWriter for TenantTx {
    fn outbox_tx(&self) -> &Scoped {
        self
    }
}

impl sealed::Sealed for PlatformTx {}
impl OutboxWriter for PlatformTx {
    fn outbox_tx(&self) -> &Scoped {
        self
    }
}

/// Marks the transaction's schema pending for the relay: one row in `platform.outbox_pending`,
/// written by the same transaction as the events (insert-only, so concurrent writers of one
/// tenant never wait on each other, and a marker is visible exactly when its events are).
const MARK_PENDING: &str = "INSERT INTO platform.outbox_pending (schema_name) VALUES ($1)";

/// Writes `event` to the outbox in the caller's transaction: it is published if and only if
/// that transaction commits. The first event of a transaction also writes the schema's
/// pending marker (same transaction, same round trip) and asks for a wake-up of the relays
/// after the commit ([`crate::wakeup`]); no trigger and no `NOTIFY` are involved, so this
/// works the same on one PostgreSQL server and with the tenant's schema on a Citus worker.
pub async fn enqueue(tx: &impl OutboxWriter, event: &Envelope) -> Result<(), DbError> {
    let tx = tx.outbox_tx();
    let stmt = tx.prepare_cached("INSERT INTO outbox (id, subject, payload) VALUES ($1, $2, $3)").await?;
    let payload = Json(event);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&event.id, &event.r#type, &payload];
    with_marker(tx, tx.execute(&stmt, &params)).await
}

/// Runs `insert` (the outbox rows), pipelined with the pending marker when this is the
/// transaction's first outbox write.
async fn with_marker(tx: &Scoped, insert: impl std::future::Future<Output = Result<u64, DbError>>) -> Result<(), DbError> {
    if tx.signal_after_commit(crate::wakeup::after_commit) {
        let mark = tx.prepare_cached(MARK_PENDING).await?;
        let scope = tx.scope();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&scope];
        futures::try_join!(insert, tx.execute(&mark, &params))?;
    } else {
        insert.await?;
    }
    Ok(())
}

/// Why an event could not be enqueued.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The payload did not serialize (a bug of the caller's type).
    #[error("event payload: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The one way services publish: builds the [`Envelope`] (`event_type` is one of the
/// subject constants of the client crates, e.g. `crm_client_deal::subjects::DEAL_CLOSED_WON`)
/// for the transaction's tenant, attributed to `actor` (a user id; `None` for the system),
/// and writes it to the outbox in the caller's transaction ([`enqueue`]).
pub async fn publish(
    tx: &TenantTx,
    actor: Option<i32>,
    event_type: &str,
    data: impl serde::Serialize,
) -> Result<(), PublishError> {
    let event = Envelope::new(event_type, tx.tenant_id(), actor.map(|a| a.to_string()), data)?;
    enqueue(tx, &event).await?;
    Ok(())
}

/// As [`publish`], from a platform transaction (tenant-service): the tenant is named.
pub async fn publish_platform(
    tx: &PlatformTx,
    tenant: &crm_tenant::TenantId,
    actor: Option<String>,
    event_type: &str,
    data: impl serde::Serialize,
) -> Result<(), PublishError> {
    let event = Envelope::new(event_type, tenant, actor, data)?;
    enqueue(tx, &event).await?;
    Ok(())
}

/// As [`publish`] for many events of one transaction, in one statement (CSV import: a batch
/// of rows and their events), in the given order.
pub async fn publish_many(
    tx: &TenantTx,
    actor: Option<i32>,
    events: impl IntoIterator<Item = (&str, serde_json::Value)>,
) -> Result<(), PublishError> {
    let actor = actor.map(|a| a.to_string());
    let envelopes = events
        .into_iter()
        .map(|(event_type, data)| Envelope::new(event_type, tx.tenant_id(), actor.clone(), data))
        .collect::<Result<Vec<_>, _>>()?;
    if envelopes.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = envelopes.iter().map(|e| e.id.as_str()).collect();
    let subjects: Vec<&str> = envelopes.iter().map(|e| e.r#type.as_str()).collect();
    let payloads: Vec<Json<&Envelope>> = envelopes.iter().map(Json).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO outbox (id, subject, payload)
             SELECT u.id, u.subject, u.payload FROM unnest($1::text[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS u(id, subject, payload, ord)
             ORDER BY u.ord",
        )
        .await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&ids, &subjects, &payloads];
    with_marker(tx, tx.execute(&stmt, &params)).await?;
    Ok(())
}
