use crm_tenant::{PlatformTx, TenantTx};
use deadpool_postgres::Transaction;
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
    fn outbox_tx(&self) -> &Transaction<'_>;
}

impl sealed::Sealed for TenantTx<'_> {}
impl OutboxWriter for TenantTx<'_> {
    fn outbox_tx(&self) -> &Transaction<'_> {
        self
    }
}

impl sealed::Sealed for PlatformTx<'_> {}
impl OutboxWriter for PlatformTx<'_> {
    fn outbox_tx(&self) -> &Transaction<'_> {
        self
    }
}

/// Writes `event` to the outbox in the caller's transaction: it is published if and only if
/// that transaction commits. The insert trigger marks the schema pending and `NOTIFY`s the relay.
pub async fn enqueue(tx: &impl OutboxWriter, event: &Envelope) -> Result<(), tokio_postgres::Error> {
    let tx = tx.outbox_tx();
    let stmt = tx.prepare_cached("INSERT INTO outbox (id, subject, payload) VALUES ($1, $2, $3)").await?;
    tx.execute(&stmt, &[&event.id, &event.r#type, &Json(event)]).await?;
    Ok(())
}
