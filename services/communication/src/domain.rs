//! Inputs and their rules: the request bodies (`NewX` to create, `XPatch` to change some
//! fields), enumerations, lengths, and the checks that turn bodies into the rows the
//! repository writes. Every problem is collected into [`FieldErrors`].

use chrono::{DateTime, Utc};
use crm_client_communication::{ActivityDetails, CustomFields, NewActivity, NewTask, TaskDetails};
use crm_web::FieldErrors;
use serde::{Deserialize, Deserializer};

pub const ACTIVITY_TYPES: &[&str] = &["email", "call", "meeting", "note", "task"];
pub const ACTIVITY_STATUSES: &[&str] = &["scheduled", "completed", "cancelled"];
pub const DIRECTIONS: &[&str] = &["inbound", "outbound"];
pub const TASK_TYPES: &[&str] = &["task", "reminder", "follow_up"];
pub const TASK_STATUSES: &[&str] = &["pending", "in_progress", "completed", "cancelled"];
pub const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

pub const MAX_SUBJECT: usize = 255;
pub const MAX_DESCRIPTION: usize = 50_000;
pub const MAX_BODY: usize = 200_000;
pub const MAX_OUTCOME: usize = 50;
pub const MAX_CATEGORY: usize = 100;
/// Serialized size of `custom_fields`.
pub const MAX_CUSTOM_FIELDS: usize = 16_000;

/// For PATCH bodies: absent field = `None`, `null` = `Some(None)`, a value = `Some(Some(v))`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub fn one_of(errors: &mut FieldErrors, field: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        errors.add(field, format!("must be one of: {}", allowed.join(", ")));
    }
}

/// A required single-line value (subject, title, name): trimmed, 1..=`max` characters, no
/// control characters (CR/LF in a subject is header injection in an email, a forged line in
/// a log or a CSV export).
pub fn required_line(errors: &mut FieldErrors, field: &str, value: &str, max: usize) -> String {
    match crm_web::validate::line(errors, field, Some(value), max) {
        Some(v) => v,
        None => {
            errors.add(field, "required");
            String::new()
        }
    }
}

/// An optional single-line value (outcome, category, a search term); blank becomes `None`.
pub fn optional_line(errors: &mut FieldErrors, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    crm_web::validate::line(errors, field, value, max)
}

/// A required multi-line text (an email body): trimmed, not empty, at most `max`
/// characters; line breaks and tabs are fine, other control characters are not.
pub fn required_body(errors: &mut FieldErrors, field: &str, value: &str, max: usize) -> String {
    let value = value.trim();
    if value.is_empty() {
        errors.add(field, "required");
    } else {
        crm_web::validate::multiline(errors, field, value, max);
    }
    value.to_owned()
}

/// An optional multi-line text (description, body); blank becomes `None`.
pub fn optional_body(errors: &mut FieldErrors, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    crm_web::validate::multiline(errors, field, value, max);
    Some(value.to_owned())
}

pub fn positive_id(errors: &mut FieldErrors, field: &str, id: Option<i32>) -> Option<i32> {
    if let Some(id) = id
        && id <= 0
    {
        errors.add(field, "must be a positive id");
    }
    id
}

pub fn custom_fields(errors: &mut FieldErrors, value: Option<CustomFields>) -> CustomFields {
    let value = value.unwrap_or_default();
    if value.keys().any(|k| k.trim().is_empty() || !crm_web::validate::is_single_line(k)) {
        errors.add("custom_fields", "keys must be non-empty single lines without control characters");
    }
    if serde_json::to_string(&value).map(|s| s.len()).unwrap_or(usize::MAX) > MAX_CUSTOM_FIELDS {
        errors.add("custom_fields", format!("at most {MAX_CUSTOM_FIELDS} bytes of JSON"));
    }
    value
}

/// An activity as written to the database (validated).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityWrite {
    pub r#type: String,
    pub subject: String,
    pub description: Option<String>,
    pub status: String,
    pub direction: Option<String>,
    pub outcome: Option<String>,
    pub duration_minutes: Option<i32>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub owner_id: Option<i32>,
    pub custom_fields: CustomFields,
    pub needs_review: bool,
}

/// Checks a create/replace body. `owner_id` defaults to `default_owner`; a completed
/// activity without `completed_at` is completed now.
pub fn check_activity(errors: &mut FieldErrors, input: NewActivity, default_owner: i32, now: DateTime<Utc>) -> ActivityWrite {
    let r#type = input.r#type.trim().to_ascii_lowercase();
    one_of(errors, "type", &r#type, ACTIVITY_TYPES);
    let subject = required_line(errors, "subject", &input.subject, MAX_SUBJECT);
    let description = optional_body(errors, "description", input.description.as_deref(), MAX_DESCRIPTION);
    let status = input.status.map(|s| s.trim().to_ascii_lowercase()).unwrap_or_else(|| "completed".to_owned());
    one_of(errors, "status", &status, ACTIVITY_STATUSES);
    let direction = input.direction.map(|d| d.trim().to_ascii_lowercase()).filter(|d| !d.is_empty());
    if let Some(d) = &direction {
        one_of(errors, "direction", d, DIRECTIONS);
    }
    let outcome = optional_line(errors, "outcome", input.outcome.as_deref(), MAX_OUTCOME).map(|o| o.to_lowercase());
    if let Some(d) = input.duration_minutes
        && !(0..=100_000).contains(&d)
    {
        errors.add("duration_minutes", "must be between 0 and 100000");
    }
    let completed_at = match status.as_str() {
        "completed" => Some(input.completed_at.unwrap_or(now)),
        _ => {
            if input.completed_at.is_some() {
                errors.add("completed_at", "only a completed activity has a completion time");
            }
            None
        }
    };
    if let Some(at) = completed_at
        && at > now + chrono::Duration::minutes(5)
    {
        errors.add("completed_at", "cannot be in the future");
    }
    let contact_id = positive_id(errors, "contact_id", input.contact_id);
    let company_id = positive_id(errors, "company_id", input.company_id);
    let deal_id = positive_id(errors, "deal_id", input.deal_id);
    let owner_id = positive_id(errors, "owner_id", input.owner_id).or(Some(default_owner));
    let custom_fields = custom_fields(errors, input.custom_fields);
    let mut write = ActivityWrite {
        r#type,
        subject,
        description,
        status,
        direction,
        outcome,
        duration_minutes: input.duration_minutes,
        scheduled_at: input.scheduled_at,
        completed_at,
        contact_id,
        company_id,
        deal_id,
        owner_id,
        custom_fields,
        needs_review: false,
    };
    write.needs_review = incomplete(&write);
    write
}

/// Requirement 4.3: data worth a second look (nothing linked, or an interaction without
/// its outcome).
pub fn incomplete(a: &ActivityWrite) -> bool {
    let unlinked = a.contact_id.is_none() && a.company_id.is_none() && a.deal_id.is_none();
    let no_outcome = matches!(a.r#type.as_str(), "call" | "meeting") && a.status == "completed" && a.outcome.is_none();
    unlinked || no_outcome
}

/// `PATCH /activities/{id}`: only the fields present change; `null` clears a field.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityPatch {
    #[serde(rename = "type")]
    pub r#type: Option<String>,
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub direction: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub outcome: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub duration_minutes: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub scheduled_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub completed_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub contact_id: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub company_id: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub deal_id: Option<Option<i32>>,
    pub owner_id: Option<i32>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<CustomFields>,
}

impl ActivityPatch {
    /// The full body this patch makes of `current`. Changing the status away from
    /// `completed` drops the completion time; to `completed`, it is set now unless given.
    pub fn apply(self, current: &ActivityDetails) -> NewActivity {
        let status_changed = self.status.as_ref().is_some_and(|s| *s != current.status);
        let completed_at = match self.completed_at {
            Some(v) => v,
            None if status_changed => None,
            None => current.completed_at,
        };
        NewActivity {
            r#type: self.r#type.unwrap_or_else(|| current.r#type.clone()),
            subject: self.subject.unwrap_or_else(|| current.subject.clone()),
            description: self.description.unwrap_or_else(|| Some(current.description.clone())),
            status: Some(self.status.unwrap_or_else(|| current.status.clone())),
            direction: self.direction.unwrap_or_else(|| current.direction.clone()),
            outcome: self.outcome.unwrap_or_else(|| current.outcome.clone()),
            duration_minutes: self.duration_minutes.unwrap_or(current.duration_minutes),
            scheduled_at: self.scheduled_at.unwrap_or(current.scheduled_at),
            completed_at,
            contact_id: self.contact_id.unwrap_or(current.contact_id),
            company_id: self.company_id.unwrap_or(current.company_id),
            deal_id: self.deal_id.unwrap_or(current.deal_id),
            owner_id: self.owner_id.or(current.owner_id),
            custom_fields: Some(self.custom_fields.unwrap_or_else(|| current.custom_fields.clone())),
        }
    }
}

/// A task as written to the database (validated).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskWrite {
    pub title: String,
    pub description: Option<String>,
    pub r#type: String,
    pub status: String,
    pub priority: String,
    pub due_date: Option<DateTime<Utc>>,
    pub reminder_at: Option<DateTime<Utc>>,
    pub assigned_to: i32,
    pub contact_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub completed_at: Option<DateTime<Utc>>,
    pub custom_fields: CustomFields,
}

/// Checks a create/replace body; `assigned_to` defaults to the caller. `completed_at`
/// follows the status (kept from `previous` while the task stays completed).
pub fn check_task(
    errors: &mut FieldErrors,
    input: NewTask,
    default_assignee: i32,
    previous_completed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> TaskWrite {
    let title = required_line(errors, "title", &input.title, MAX_SUBJECT);
    let description = optional_body(errors, "description", input.description.as_deref(), MAX_DESCRIPTION);
    let r#type = input.r#type.map(|t| t.trim().to_ascii_lowercase()).unwrap_or_else(|| "task".to_owned());
    one_of(errors, "type", &r#type, TASK_TYPES);
    let status = input.status.map(|s| s.trim().to_ascii_lowercase()).unwrap_or_else(|| "pending".to_owned());
    one_of(errors, "status", &status, TASK_STATUSES);
    let priority = input.priority.map(|p| p.trim().to_ascii_lowercase()).unwrap_or_else(|| "normal".to_owned());
    one_of(errors, "priority", &priority, PRIORITIES);
    if let (Some(reminder), Some(due)) = (input.reminder_at, input.due_date)
        && reminder > due
    {
        errors.add("reminder_at", "must not be after due_date");
    }
    let assigned_to = positive_id(errors, "assigned_to", input.assigned_to).unwrap_or(default_assignee);
    let contact_id = positive_id(errors, "contact_id", input.contact_id);
    let deal_id = positive_id(errors, "deal_id", input.deal_id);
    let custom_fields = custom_fields(errors, input.custom_fields);
    let completed_at = (status == "completed").then(|| previous_completed_at.unwrap_or(now));
    TaskWrite {
        title,
        description,
        r#type,
        status,
        priority,
        due_date: input.due_date,
        reminder_at: input.reminder_at,
        assigned_to,
        contact_id,
        deal_id,
        completed_at,
        custom_fields,
    }
}

/// `PATCH /tasks/{id}`: only the fields present change; `null` clears a field. Complete or
/// cancel a task with `{"status": "completed"}` / `{"status": "cancelled"}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(rename = "type")]
    pub r#type: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_date: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub reminder_at: Option<Option<DateTime<Utc>>>,
    pub assigned_to: Option<i32>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub contact_id: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub deal_id: Option<Option<i32>>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<CustomFields>,
}

impl TaskPatch {
    pub fn apply(self, current: &TaskDetails) -> NewTask {
        let t = &current.task;
        NewTask {
            title: self.title.unwrap_or_else(|| t.title.clone()),
            description: self.description.unwrap_or_else(|| Some(t.description.clone())),
            r#type: Some(self.r#type.unwrap_or_else(|| t.r#type.clone())),
            status: Some(self.status.unwrap_or_else(|| t.status.clone())),
            priority: Some(self.priority.unwrap_or_else(|| t.priority.clone())),
            due_date: self.due_date.unwrap_or(t.due_date),
            reminder_at: self.reminder_at.unwrap_or(current.reminder_at),
            assigned_to: Some(self.assigned_to.unwrap_or(t.assigned_to)),
            contact_id: self.contact_id.unwrap_or(t.contact_id),
            deal_id: self.deal_id.unwrap_or(t.deal_id),
            custom_fields: Some(self.custom_fields.unwrap_or_else(|| current.custom_fields.clone())),
        }
    }
}

/// Body of `POST /email-templates` and `PUT /email-templates/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEmailTemplate {
    pub name: String,
    /// May use variables, e.g. `Proposal for {{contact.company_name}}`.
    pub subject: String,
    /// Values are HTML-escaped when rendered.
    pub body_html: String,
    /// Derived from the HTML body when absent.
    #[serde(default)]
    pub body_text: Option<String>,
    /// welcome, follow_up, proposal, ...
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// Body of `POST /email-templates/{id}/preview`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    #[serde(default)]
    pub contact_id: Option<i32>,
    #[serde(default)]
    pub deal_id: Option<i32>,
}

/// Body of `POST /emails`: a template, or subject and bodies (variables allowed in both).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEmail {
    pub contact_id: i32,
    #[serde(default)]
    pub template_id: Option<i32>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body_html: Option<String>,
    #[serde(default)]
    pub body_text: Option<String>,
    #[serde(default)]
    pub deal_id: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_defaults_and_review_flag() {
        let now = Utc::now();
        let mut errors = FieldErrors::new();
        let a = check_activity(
            &mut errors,
            NewActivity { r#type: "Call".into(), subject: " Intro ".into(), ..Default::default() },
            7,
            now,
        );
        assert!(errors.is_empty());
        assert_eq!((a.r#type.as_str(), a.subject.as_str(), a.status.as_str()), ("call", "Intro", "completed"));
        assert_eq!(a.completed_at, Some(now));
        assert_eq!(a.owner_id, Some(7));
        assert!(a.needs_review, "unlinked call without outcome");
        let b = check_activity(
            &mut errors,
            NewActivity { r#type: "note".into(), subject: "n".into(), contact_id: Some(1), ..Default::default() },
            7,
            now,
        );
        assert!(!b.needs_review);
    }

    #[test]
    fn activity_errors_list_every_field() {
        let mut errors = FieldErrors::new();
        check_activity(
            &mut errors,
            NewActivity {
                r#type: "fax".into(),
                subject: "".into(),
                status: Some("scheduled".into()),
                completed_at: Some(Utc::now()),
                direction: Some("sideways".into()),
                contact_id: Some(-1),
                duration_minutes: Some(-5),
                ..Default::default()
            },
            1,
            Utc::now(),
        );
        let err = errors.into_result().unwrap_err();
        let fields = err.details().unwrap()["fields"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(fields, ["completed_at", "contact_id", "direction", "duration_minutes", "subject", "type"]);
    }

    #[test]
    fn patch_null_clears_and_absent_keeps() {
        let patch: TaskPatch = serde_json::from_str(r#"{"due_date": null, "status": "completed"}"#).unwrap();
        assert_eq!(patch.due_date, Some(None));
        assert_eq!(patch.reminder_at, None);
        assert!(serde_json::from_str::<TaskPatch>(r#"{"bogus": 1}"#).is_err());
    }
}
