use async_nats::{Client, SubscribeError};
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::Envelope;

/// Calls `callback` with every event published on `subjects` (e.g. `["tenant.>", "user.>"]`),
/// for in-process caches. Plain core NATS subscriptions, not a durable consumer: every
/// instance sees every event. Best effort by design (a cache TTL covers what is missed while
/// disconnected; async-nats resubscribes after a reconnect). Abort the handle to stop.
pub async fn subscribe_invalidations<F>(
    client: &Client,
    subjects: &[&str],
    callback: F,
) -> Result<JoinHandle<()>, SubscribeError>
where
    F: Fn(Envelope) + Send + Sync + 'static,
{
    let mut subscriptions = Vec::with_capacity(subjects.len());
    for subject in subjects {
        subscriptions.push(client.subscribe(subject.to_string()).await?);
    }
    // A round trip (a request nobody answers): the server handles a connection's operations
    // in order, so once it answers, the subscriptions are in place and every event published
    // after this function returns is seen. A flush only writes them out.
    let _ = client.request(client.new_inbox(), "".into()).await;
    let mut messages = futures::stream::select_all(subscriptions);
    Ok(tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match serde_json::from_slice::<Envelope>(&message.payload) {
                Ok(event) => callback(event),
                Err(err) => tracing::debug!(subject = %message.subject, error = %err, "ignoring a non-event message"),
            }
        }
    }))
}
