//! In-memory [`CommunicationClient`] for other crates' tests (feature `mock`).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::{ActivityDetails, CallContext, ClientError, CommunicationClient, EmailTemplateDetails, NewActivity, NewTask, TaskDetails, TaskInfo};

/// In-memory stand-in for other services' unit tests; counts calls.
#[derive(Default)]
pub struct MockCommunicationClient {
    pub activities: Mutex<HashMap<i32, ActivityDetails>>,
    pub tasks: Mutex<HashMap<i32, TaskDetails>>,
    pub templates: Mutex<HashMap<i32, EmailTemplateDetails>>,
    /// Activities and tasks created through the mock, in order.
    pub logged: Mutex<Vec<NewActivity>>,
    pub created_tasks: Mutex<Vec<NewTask>>,
    /// When set, every call fails with this error (e.g. `Unavailable`).
    pub fail_with: Mutex<Option<ClientError>>,
    pub calls: Mutex<usize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MockCommunicationClient {
    pub fn with_activity(self, activity: ActivityDetails) -> Self {
        lock(&self.activities).insert(activity.id, activity);
        self
    }

    pub fn with_task(self, task: TaskDetails) -> Self {
        lock(&self.tasks).insert(task.task.id, task);
        self
    }

    pub fn with_template(self, template: EmailTemplateDetails) -> Self {
        lock(&self.templates).insert(template.template.id, template);
        self
    }

    pub fn calls(&self) -> usize {
        *lock(&self.calls)
    }

    fn enter(&self) -> Result<(), ClientError> {
        *lock(&self.calls) += 1;
        match lock(&self.fail_with).clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl CommunicationClient for MockCommunicationClient {
    async fn activity(&self, _: &CallContext, id: i32) -> Result<ActivityDetails, ClientError> {
        self.enter()?;
        lock(&self.activities).get(&id).cloned().ok_or(ClientError::NotFound)
    }

    async fn log_activity(&self, _: &CallContext, activity: &NewActivity) -> Result<ActivityDetails, ClientError> {
        self.enter()?;
        let mut activities = lock(&self.activities);
        let id = activities.keys().max().copied().unwrap_or(0) + 1;
        let now = chrono::Utc::now();
        let status = activity.status.clone().unwrap_or_else(|| "completed".to_owned());
        let details = ActivityDetails {
            id,
            r#type: activity.r#type.clone(),
            subject: activity.subject.clone(),
            description: activity.description.clone().unwrap_or_default(),
            completed_at: activity.completed_at.or((status == "completed").then_some(now)),
            status,
            direction: activity.direction.clone(),
            outcome: activity.outcome.clone(),
            duration_minutes: activity.duration_minutes,
            scheduled_at: activity.scheduled_at,
            contact_id: activity.contact_id,
            company_id: activity.company_id,
            deal_id: activity.deal_id,
            owner_id: activity.owner_id,
            contact_name: None,
            company_name: None,
            deal_title: None,
            owner_name: None,
            custom_fields: activity.custom_fields.clone().unwrap_or_default(),
            needs_review: false,
            created_by: None,
            created_at: now,
            updated_at: now,
        };
        activities.insert(id, details.clone());
        lock(&self.logged).push(activity.clone());
        Ok(details)
    }

    async fn task(&self, _: &CallContext, id: i32) -> Result<TaskDetails, ClientError> {
        self.enter()?;
        lock(&self.tasks).get(&id).cloned().ok_or(ClientError::NotFound)
    }

    async fn create_task(&self, _: &CallContext, task: &NewTask) -> Result<TaskDetails, ClientError> {
        self.enter()?;
        let mut tasks = lock(&self.tasks);
        let id = tasks.keys().max().copied().unwrap_or(0) + 1;
        let now = chrono::Utc::now();
        let details = TaskDetails {
            task: TaskInfo {
                id,
                title: task.title.clone(),
                description: task.description.clone().unwrap_or_default(),
                r#type: task.r#type.clone().unwrap_or_else(|| "task".to_owned()),
                status: task.status.clone().unwrap_or_else(|| "pending".to_owned()),
                priority: task.priority.clone().unwrap_or_else(|| "normal".to_owned()),
                due_date: task.due_date,
                assigned_to: task.assigned_to.unwrap_or(0),
                contact_id: task.contact_id,
                deal_id: task.deal_id,
                created_at: now,
            },
            reminder_at: task.reminder_at,
            reminder_status: task.reminder_at.map(|_| "scheduled".to_owned()),
            completed_at: None,
            is_overdue: false,
            custom_fields: task.custom_fields.clone().unwrap_or_default(),
            created_by: None,
            updated_at: now,
        };
        tasks.insert(id, details.clone());
        lock(&self.created_tasks).push(task.clone());
        Ok(details)
    }

    async fn email_template(&self, _: &CallContext, id: i32) -> Result<EmailTemplateDetails, ClientError> {
        self.enter()?;
        lock(&self.templates).get(&id).cloned().ok_or(ClientError::NotFound)
    }
}
