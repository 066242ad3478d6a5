use std::time::Duration;

use async_nats::jetstream::{self, context::CreateStreamError, stream};

/// The one JetStream stream that captures every platform subject.
pub const STREAM_NAME: &str = "CRM";
/// Subjects of [`STREAM_NAME`]: one wildcard per event family (subject = event type).
pub const STREAM_SUBJECTS: [&str; 13] = [
    "tenant.>",
    "user.>",
    "company.>",
    "contact.>",
    "deal.>",
    "activity.>",
    "email.>",
    "task.>",
    "webhook.>",
    // Issue 16 (S-fields): custom field definitions and lead scoring rules.
    "custom_field.>",
    "scoring_rule.>",
    // Issue 16: notes.
    "note.>",
    // Issue 16: files.
    "attachment.>",
];
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

/// Creates the stream if missing and returns it. An existing stream keeps its settings (its
/// retention may have been tuned by an operator), except that subject families added to
/// [`STREAM_SUBJECTS`] since it was created are added to it (else their events could not be
/// published).
pub async fn ensure_stream(js: &jetstream::Context) -> Result<stream::Stream, CreateStreamError> {
    let mut stream = js.get_or_create_stream(stream_config()).await?;
    let mut config = match stream.info().await {
        Ok(info) => info.config.clone(),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the CRM stream's subjects; not checking for new families");
            return Ok(stream);
        }
    };
    let missing: Vec<String> =
        STREAM_SUBJECTS.iter().filter(|s| !config.subjects.iter().any(|have| have == *s)).map(|s| (*s).to_owned()).collect();
    if !missing.is_empty() {
        tracing::info!(?missing, "adding subject families to the CRM stream");
        config.subjects.extend(missing);
        if let Err(err) = js.update_stream(&config).await {
            tracing::warn!(error = %err, "cannot add subject families to the CRM stream");
        }
    }
    Ok(stream)
}
