//! communication-service's public contract: its DTOs (seed 004, section 5), the subjects
//! and payloads of its events ([`subjects`]) and a typed client. `MockCommunicationClient`
//! exists only with the `mock` feature, which other crates enable in their
//! `[dev-dependencies]`.

pub mod subjects;
mod attachments;
mod automation;
mod dto;
mod notes;
mod webhooks;
#[cfg(any(test, feature = "mock"))]
mod mock;

use async_trait::async_trait;
pub use crm_client_core::{CallContext, ClientConfig, ClientError};
use crm_client_core::HttpClient;
pub use attachments::Attachment;
pub use automation::{Enrollment, EnrollmentStep, EmailUnsubscribed, Rule, RuleRun, Sequence, SequenceStep, TaskReminderDue};
pub use dto::{
    ActivityDetails, ActivityInfo, CustomFields, EmailEvent, EmailStatus, EmailTemplateDetails, EmailTemplateInfo,
    NewActivity, NewTask, SentEmail, TaskDetails, TaskInfo,
};
pub use notes::{MAX_NOTE_BODY, NOTE_EVENT_BODY_CHARS, NewNote, Note, NoteEvent, NotePatch};
/// In-memory stand-in for other services' tests (feature `mock`, dev-dependencies only).
pub use webhooks::{NewWebhook, Webhook, WebhookDelivery, WebhookEvent, WebhookPatch, WebhookWithSecret};
#[cfg(any(test, feature = "mock"))]
pub use mock::MockCommunicationClient;

/// What other services ask of communication-service.
#[async_trait]
pub trait CommunicationClient: Send + Sync {
    async fn activity(&self, ctx: &CallContext, id: i32) -> Result<ActivityDetails, ClientError>;
    /// Logs an activity as the caller (`activity.logged` follows).
    async fn log_activity(&self, ctx: &CallContext, activity: &NewActivity) -> Result<ActivityDetails, ClientError>;
    async fn task(&self, ctx: &CallContext, id: i32) -> Result<TaskDetails, ClientError>;
    async fn create_task(&self, ctx: &CallContext, task: &NewTask) -> Result<TaskDetails, ClientError>;
    async fn email_template(&self, ctx: &CallContext, id: i32) -> Result<EmailTemplateDetails, ClientError>;
}

/// The reqwest implementation (`COMMUNICATION_SERVICE_URL`, default http://127.0.0.1:8084).
pub struct HttpCommunicationClient {
    http: HttpClient,
}

impl HttpCommunicationClient {
    pub fn new(config: ClientConfig) -> Self {
        Self { http: HttpClient::new(config) }
    }
}

#[async_trait]
impl CommunicationClient for HttpCommunicationClient {
    async fn activity(&self, ctx: &CallContext, id: i32) -> Result<ActivityDetails, ClientError> {
        self.http.get(ctx, &format!("/api/v1/activities/{id}")).await
    }

    async fn log_activity(&self, ctx: &CallContext, activity: &NewActivity) -> Result<ActivityDetails, ClientError> {
        self.http.post(ctx, "/api/v1/activities", activity).await
    }

    async fn task(&self, ctx: &CallContext, id: i32) -> Result<TaskDetails, ClientError> {
        self.http.get(ctx, &format!("/api/v1/tasks/{id}")).await
    }

    async fn create_task(&self, ctx: &CallContext, task: &NewTask) -> Result<TaskDetails, ClientError> {
        self.http.post(ctx, "/api/v1/tasks", task).await
    }

    async fn email_template(&self, ctx: &CallContext, id: i32) -> Result<EmailTemplateDetails, ClientError> {
        self.http.get(ctx, &format!("/api/v1/email-templates/{id}")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mock_records_and_fails_on_demand() {
        let mock = MockCommunicationClient::default();
        let ctx = CallContext::default();
        let new = NewActivity { r#type: "note".into(), subject: "Hello".into(), ..Default::default() };
        let a = mock.log_activity(&ctx, &new).await.unwrap();
        assert_eq!(mock.activity(&ctx, a.id).await.unwrap().subject, "Hello");
        assert_eq!(a.status, "completed");
        assert!(a.completed_at.is_some());
        let t = mock.create_task(&ctx, &NewTask { title: "Call".into(), assigned_to: Some(3), ..Default::default() }).await.unwrap();
        assert_eq!(t.task.assigned_to, 3);
        assert!(matches!(mock.email_template(&ctx, 9).await, Err(ClientError::NotFound)));
        assert_eq!(mock.calls(), 4);
        *mock.fail_with.lock().unwrap() = Some(ClientError::Unavailable("down".into()));
        assert!(mock.task(&ctx, t.task.id).await.is_err());
    }

    #[tokio::test]
    async fn an_unreachable_service_is_unavailable() {
        let client = HttpCommunicationClient::new(ClientConfig::new("http://127.0.0.1:9"));
        let err = client.activity(&CallContext::default(), 1).await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)), "{err}");
    }
}
