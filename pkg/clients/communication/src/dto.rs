use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Free-form custom fields: always a JSON object.
pub type CustomFields = serde_json::Map<String, serde_json::Value>;

/// An activity as other services and reports see it (seed 004), also the payload of
/// `activity.logged`. Text fields never set are empty strings; `completed_at` is `null`
/// until the activity is completed (a scheduled call, a planned meeting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActivityInfo {
    pub id: i32,
    /// email, call, meeting, note, task
    #[serde(rename = "type")]
    pub r#type: String,
    pub subject: String,
    pub description: String,
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub owner_id: Option<i32>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// An activity as the API shows it (seed 004 ActivityDetails, plus `outcome`,
/// `needs_review`, `created_by`, `updated_at`). The enriched names are `null` when there is
/// no such reference and also when the owning service could not be reached in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActivityDetails {
    pub id: i32,
    /// email, call, meeting, note, task
    #[serde(rename = "type")]
    pub r#type: String,
    pub subject: String,
    pub description: String,
    /// scheduled, completed, cancelled
    pub status: String,
    /// inbound, outbound; `null` when it does not apply (a note).
    pub direction: Option<String>,
    /// Result of the interaction (`connected`, `no_answer`, `interested`, ...), for reports.
    pub outcome: Option<String>,
    pub duration_minutes: Option<i32>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,

    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub owner_id: Option<i32>,

    pub contact_name: Option<String>,
    pub company_name: Option<String>,
    pub deal_title: Option<String>,
    pub owner_name: Option<String>,

    #[schema(value_type = Object)]
    pub custom_fields: CustomFields,
    /// Requirement 4.3: stored with incomplete data (no contact, company or deal; a completed
    /// call or meeting without outcome; references that could not be verified).
    pub needs_review: bool,
    pub created_by: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ActivityDetails {
    pub fn info(&self) -> ActivityInfo {
        ActivityInfo {
            id: self.id,
            r#type: self.r#type.clone(),
            subject: self.subject.clone(),
            description: self.description.clone(),
            contact_id: self.contact_id,
            company_id: self.company_id,
            deal_id: self.deal_id,
            owner_id: self.owner_id,
            completed_at: self.completed_at,
            created_at: self.created_at,
        }
    }
}

/// A task (seed 004). `description` is empty when not set; `due_date` is `null` for a task
/// without a deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskInfo {
    pub id: i32,
    pub title: String,
    pub description: String,
    /// task, reminder, follow_up
    #[serde(rename = "type")]
    pub r#type: String,
    /// pending, in_progress, completed, cancelled
    pub status: String,
    /// low, normal, high, urgent
    pub priority: String,
    pub due_date: Option<DateTime<Utc>>,
    pub assigned_to: i32,
    pub contact_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// A task as the task endpoints return it: [`TaskInfo`] plus the reminder, completion and
/// bookkeeping fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskDetails {
    #[serde(flatten)]
    pub task: TaskInfo,
    /// When to remind the assignee (surfaced by `?due_soon=true`).
    pub reminder_at: Option<DateTime<Utc>>,
    /// The reminder's delivery: `scheduled`, `sent` (the assignee was emailed and
    /// `task.reminder_due` published) or `failed` (after the retries); `null` without one.
    /// Response-only.
    #[serde(default)]
    pub reminder_status: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Open and past its due date.
    pub is_overdue: bool,
    #[schema(value_type = Object)]
    pub custom_fields: CustomFields,
    pub created_by: Option<i32>,
    pub updated_at: DateTime<Utc>,
}

/// An email template (seed 004). `category` is empty when not set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmailTemplateInfo {
    pub id: i32,
    pub name: String,
    pub subject: String,
    /// welcome, follow_up, proposal, ...
    pub category: String,
    pub is_active: bool,
}

/// A template with its bodies and the variables it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmailTemplateDetails {
    #[serde(flatten)]
    pub template: EmailTemplateInfo,
    pub body_html: String,
    pub body_text: String,
    /// Variables used by subject and bodies, e.g. `["contact.first_name", "deal.title"]`.
    pub variables: Vec<String>,
    pub created_by: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Delivery and engagement of one sent email (`GET /emails/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmailStatus {
    pub id: i32,
    pub activity_id: Option<i32>,
    pub template_id: Option<i32>,
    pub contact_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub sender_id: Option<i32>,
    pub email_address: String,
    pub subject: String,
    /// queued, sent, opened, clicked
    pub status: String,
    pub message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// When the SMTP server (or the local sink) accepted the message.
    pub delivered_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
    pub open_count: i32,
    pub click_count: i32,
    pub created_at: DateTime<Utc>,
}

/// `202` answer of `POST /emails`: the logged activity and the tracking row (status
/// `queued`; delivery continues after the response).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SentEmail {
    pub email: EmailStatus,
    pub activity: ActivityDetails,
}

/// Payload of `email.sent`, `email.opened`, `email.clicked` (API.md "Events").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmailEvent {
    pub email_id: i32,
    pub activity_id: Option<i32>,
    pub contact_id: Option<i32>,
    pub email_address: String,
    pub template_id: Option<i32>,
}

/// Body of `POST /activities` (also the `log_activity` client call).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewActivity {
    /// email, call, meeting, note, task
    #[serde(rename = "type")]
    pub r#type: String,
    pub subject: String,
    #[serde(default)]
    pub description: Option<String>,
    /// scheduled, completed (default), cancelled
    #[serde(default)]
    pub status: Option<String>,
    /// inbound, outbound
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub duration_minutes: Option<i32>,
    #[serde(default)]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Defaults to now for a completed activity.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub contact_id: Option<i32>,
    #[serde(default)]
    pub company_id: Option<i32>,
    #[serde(default)]
    pub deal_id: Option<i32>,
    /// Defaults to the caller.
    #[serde(default)]
    pub owner_id: Option<i32>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<CustomFields>,
}

/// Body of `POST /tasks` and `PUT /tasks/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// task (default), reminder, follow_up
    #[serde(default, rename = "type")]
    pub r#type: Option<String>,
    /// pending (default), in_progress, completed, cancelled
    #[serde(default)]
    pub status: Option<String>,
    /// low, normal (default), high, urgent
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub due_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reminder_at: Option<DateTime<Utc>>,
    /// Defaults to the caller.
    #[serde(default)]
    pub assigned_to: Option<i32>,
    #[serde(default)]
    pub contact_id: Option<i32>,
    #[serde(default)]
    pub deal_id: Option<i32>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<CustomFields>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_dtos_have_the_seed_fields() {
        let now = Utc::now();
        let a = ActivityInfo {
            id: 1,
            r#type: "call".into(),
            subject: "s".into(),
            description: String::new(),
            contact_id: Some(2),
            company_id: None,
            deal_id: None,
            owner_id: Some(3),
            completed_at: None,
            created_at: now,
        };
        let v = serde_json::to_value(&a).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["company_id", "completed_at", "contact_id", "created_at", "deal_id", "description", "id", "owner_id", "subject", "type"]
        );
        let t = TaskInfo {
            id: 1,
            title: "t".into(),
            description: String::new(),
            r#type: "follow_up".into(),
            status: "pending".into(),
            priority: "normal".into(),
            due_date: None,
            assigned_to: 4,
            contact_id: None,
            deal_id: None,
            created_at: now,
        };
        let details = TaskDetails {
            task: t.clone(),
            reminder_at: None,
            reminder_status: None,
            completed_at: None,
            is_overdue: false,
            custom_fields: Default::default(),
            created_by: None,
            updated_at: now,
        };
        // A TaskDetails decodes as the seed's TaskInfo.
        let back: TaskInfo = serde_json::from_value(serde_json::to_value(&details).unwrap()).unwrap();
        assert_eq!(back, t);
        let e = EmailTemplateInfo { id: 1, name: "n".into(), subject: "s".into(), category: "welcome".into(), is_active: true };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"id": 1, "name": "n", "subject": "s", "category": "welcome", "is_active": true})
        );
    }
}
