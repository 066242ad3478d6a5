use std::time::Duration;

use async_nats::jetstream::{self, context::CreateStreamError, stream};

/// The one JetStream stream that captures every platform subject.
pub const STREAM_NAME: &str = "CRM";
/// Subjects of [`STREAM_NAME`]: one wildcard per event family (subject = event type).
pub const STREAM_SUBJECTS: [&str; 8] =
    ["tenant.>", "user.>", "company.>", "contact.>", "deal.>", "activity.>", "email.>", "task.>"];
/// How long JetStream remembers a `Nats-Msg-Id`: a relay re-publishing a row whose ack was
/// lost within this window produces no duplicate.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The stream's configuration (file storage, so a NATS restart loses nothing).
pub fn stream_config() -> stream::Config {
    stream::Config {
        name: STREAM_NAME.to_owned(),
        subjects: STREAM_SUBJECTS.iter().map(|s| (*s).to_owned()).collect(),
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// Creates the stream if missing and returns it; an existing stream is left as it is (its
/// retention may have been tuned by an operator).
pub async fn ensure_stream(js: &jetstream::Context) -> Result<stream::Stream, CreateStreamError> {
    js.get_or_create_stream(stream_config()).await
}
