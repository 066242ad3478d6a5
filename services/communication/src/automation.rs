//! Automation inputs and their rules (issue 15): the bodies of `/sequences` and
//! `/automation/rules`, the typed conditions a rule checks on an event's data, the actions
//! it runs, and where an event names its contact, deal and owner.

use chrono::{DateTime, Utc};
use crm_web::FieldErrors;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{MAX_DESCRIPTION, MAX_SUBJECT, optional_body, required_line};

/// The deepest chain of rules an event may trigger: an event caused by this many rule runs
/// in a row starts no run (its runs are recorded as `loop_stopped`). A rule whose actions
/// cause its own trigger stops here instead of running forever.
pub const MAX_DEPTH: i32 = 5;
/// Longest sequence.
pub const MAX_STEPS: usize = 50;
/// Longest delay of a step: a year.
pub const MAX_DELAY_MINUTES: i64 = 365 * 24 * 60;
/// Most conditions and actions of a rule.
pub const MAX_CONDITIONS: usize = 50;
pub const MAX_ACTIONS: usize = 20;

/// One step of `POST /sequences`: the template and the wait before it (after the previous
/// step; the first: after the enrollment), in hours or, for finer delays, minutes.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSequenceStep {
    /// Ignored (the list order is the sending order); accepted so a sequence read with GET
    /// can be PUT back as read.
    #[serde(default)]
    pub position: Option<i32>,
    pub template_id: i32,
    /// Whole or fractional hours (e.g. 48, 0.5); give this or `delay_minutes`.
    #[serde(default)]
    pub delay_hours: Option<f64>,
    #[serde(default)]
    pub delay_minutes: Option<i64>,
}

/// Body of `POST /sequences` and `PUT /sequences/{id}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSequence {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Default true; an inactive sequence takes no new enrollments.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// 1 to 50 steps, in sending order.
    pub steps: Vec<NewSequenceStep>,
}

/// Body of `POST /sequences/{id}/enrollments`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnrollment {
    pub contact_id: i32,
    /// A deal the emails are about (its fields are template variables).
    #[serde(default)]
    pub deal_id: Option<i32>,
}

/// A checked sequence: name, description, activity, steps as (template id, minutes).
pub struct SequenceInput {
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub steps: Vec<(i32, i32)>,
}

pub fn check_sequence(errors: &mut FieldErrors, input: NewSequence) -> SequenceInput {
    let name = required_line(errors, "name", &input.name, MAX_SUBJECT);
    let description = optional_body(errors, "description", input.description.as_deref(), MAX_DESCRIPTION);
    if input.steps.is_empty() || input.steps.len() > MAX_STEPS {
        errors.add("steps", format!("must have 1 to {MAX_STEPS} steps"));
    }
    let mut steps = Vec::with_capacity(input.steps.len());
    for (i, step) in input.steps.iter().enumerate() {
        let field = format!("steps[{i}]");
        if step.template_id <= 0 {
            errors.add(format!("{field}.template_id"), "must be a positive id");
        }
        let minutes = match (step.delay_hours, step.delay_minutes) {
            (Some(h), None) if h.is_finite() && h >= 0.0 => Some((h * 60.0).round() as i64),
            (None, Some(m)) if m >= 0 => Some(m),
            // Both, as a GET shows them: they must agree.
            (Some(h), Some(m)) if h.is_finite() && m >= 0 && (h * 60.0).round() as i64 == m => Some(m),
            (Some(_), Some(_)) => {
                errors.add(format!("{field}.delay_hours"), "give delay_hours or delay_minutes (both only when they agree)");
                None
            }
            (None, None) => {
                errors.add(format!("{field}.delay_hours"), "required (hours after the previous step; 0 sends at once)");
                None
            }
            _ => {
                errors.add(format!("{field}.delay_hours"), "must be a number of hours, 0 or more");
                None
            }
        };
        match minutes {
            Some(m) if m > MAX_DELAY_MINUTES => errors.add(format!("{field}.delay_hours"), "must be at most 8760 hours (a year)"),
            Some(m) => steps.push((step.template_id, i32::try_from(m).unwrap_or(i32::MAX))),
            None => {}
        }
    }
    SequenceInput { name, description, is_active: input.is_active.unwrap_or(true), steps }
}

/// `trigger` of a rule: the event type (subject) that starts it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTrigger {
    /// e.g. `deal.closed_won`, `contact.became_inactive`, `activity.logged`
    pub event: String,
}

/// Body of `POST /automation/rules` and `PUT /automation/rules/{id}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    pub trigger: RuleTrigger,
    /// `all` (default: every condition holds) or `any`.
    #[serde(default, rename = "match")]
    pub match_mode: Option<String>,
    /// `[{"field": "value", "op": "gte", "value": 1000}]` (a list: see `match`), or
    /// `{"all": [...]}` / `{"any": [...]}`. `field` is a dotted path into the event's data.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub conditions: Option<Value>,
    /// 1 to 20 actions, run in order: `create_task`, `send_email`, `enroll_in_sequence`,
    /// `update_field`, `webhook`.
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
}

/// `PATCH /automation/rules/{id}` (switch a rule on or off, rename it).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The comparison of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
}

pub const OPS: &[&str] = &["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains"];

impl Op {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "in" => Self::In,
            "contains" => Self::Contains,
            _ => return None,
        })
    }
}

/// A typed condition on the event's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    pub value: Value,
}

/// The value at a dotted path of the event's data (`deal.value`, `owner_id`, `tags.0`); a
/// leading `data.` is allowed.
pub fn lookup<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.strip_prefix("data.").unwrap_or(path);
    path.split('.').try_fold(data, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Orders numbers as numbers, RFC 3339 times as times, other strings as text; anything
/// else (or mixed kinds) does not compare.
fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => match (x.parse::<DateTime<Utc>>(), y.parse::<DateTime<Utc>>()) {
            (Ok(x), Ok(y)) => Some(x.cmp(&y)),
            _ => Some(x.cmp(y)),
        },
        _ => None,
    }
}

impl Condition {
    /// Whether the condition holds for `data`. A missing field holds only for `ne`.
    pub fn holds(&self, data: &Value) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let Some(actual) = lookup(data, &self.field).filter(|v| !v.is_null()) else {
            return self.op == Op::Ne && !self.value.is_null();
        };
        match self.op {
            Op::Eq => same(actual, &self.value),
            Op::Ne => !same(actual, &self.value),
            Op::Gt => order(actual, &self.value) == Some(Greater),
            Op::Gte => matches!(order(actual, &self.value), Some(Greater | Equal)),
            Op::Lt => order(actual, &self.value) == Some(Less),
            Op::Lte => matches!(order(actual, &self.value), Some(Less | Equal)),
            Op::In => self.value.as_array().is_some_and(|items| items.iter().any(|v| same(actual, v))),
            Op::Contains => match (actual, &self.value) {
                (Value::String(s), Value::String(needle)) => s.to_lowercase().contains(&needle.to_lowercase()),
                (Value::Array(items), v) => items.iter().any(|i| same(i, v)),
                _ => false,
            },
        }
    }
}

/// Whether the conditions hold (`any`: one of them; `all`: every one; no conditions: yes).
pub fn matches(match_mode: &str, conditions: &[Condition], data: &Value) -> bool {
    if conditions.is_empty() {
        return true;
    }
    match match_mode {
        "any" => conditions.iter().any(|c| c.holds(data)),
        _ => conditions.iter().all(|c| c.holds(data)),
    }
}

/// The conditions stored with a rule (checked when it was saved).
pub fn stored_conditions(value: &Value) -> Vec<Condition> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|c| {
                    Some(Condition { field: c.get("field")?.as_str()?.to_owned(), op: Op::parse(c.get("op")?.as_str()?)?, value: c.get("value")?.clone() })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the conditions; returns the match mode and the stored form (a list).
pub fn check_conditions(errors: &mut FieldErrors, match_mode: Option<&str>, conditions: Option<Value>) -> (String, Value) {
    let (mode, list) = match conditions {
        None | Some(Value::Null) => (match_mode.unwrap_or("all").to_owned(), vec![]),
        Some(Value::Array(list)) => (match_mode.unwrap_or("all").to_owned(), list),
        Some(Value::Object(mut map)) if map.len() == 1 && (map.contains_key("all") || map.contains_key("any")) => {
            let (key, list) = map.iter_mut().next().map(|(k, v)| (k.clone(), v.take())).unwrap_or_default();
            if match_mode.is_some_and(|m| m != key) {
                errors.add("match", format!("contradicts conditions.{key}"));
            }
            match list {
                Value::Array(list) => (key, list),
                _ => {
                    errors.add(format!("conditions.{key}"), "must be a list of conditions");
                    (key, vec![])
                }
            }
        }
        Some(_) => {
            errors.add("conditions", "must be a list of conditions, or {\"all\": [...]} / {\"any\": [...]}");
            ("all".to_owned(), vec![])
        }
    };
    if !matches!(mode.as_str(), "all" | "any") {
        errors.add("match", "must be one of: all, any");
    }
    if list.len() > MAX_CONDITIONS {
        errors.add("conditions", format!("at most {MAX_CONDITIONS} conditions"));
    }
    let mut stored = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let at = format!("conditions[{i}]");
        let Some(obj) = c.as_object() else {
            errors.add(&at, "must be an object {\"field\", \"op\", \"value\"}");
            continue;
        };
        if let Some(extra) = obj.keys().find(|k| !matches!(k.as_str(), "field" | "op" | "value")) {
            errors.add(format!("{at}.{extra}"), "unknown field");
        }
        let field = obj.get("field").and_then(Value::as_str).map(str::trim).unwrap_or_default();
        if field.is_empty() || field.len() > 200 || !field.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.') {
            errors.add(format!("{at}.field"), "required: a dotted path into the event's data, e.g. value or deal.stage");
        }
        let op = obj.get("op").and_then(Value::as_str).unwrap_or_default();
        let Some(parsed) = Op::parse(op) else {
            errors.add(format!("{at}.op"), format!("must be one of: {}", OPS.join(", ")));
            continue;
        };
        let value = obj.get("value").cloned().unwrap_or(Value::Null);
        let ok = match parsed {
            Op::In => value.as_array().is_some_and(|a| !a.is_empty()),
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => value.is_number() || value.is_string(),
            Op::Contains => !value.is_null() && !value.is_object(),
            Op::Eq | Op::Ne => !value.is_object() && !value.is_array(),
        };
        if !ok {
            let rule = match parsed {
                Op::In => "must be a non-empty list",
                Op::Gt | Op::Gte | Op::Lt | Op::Lte => "must be a number or a string (a time in RFC 3339)",
                _ => "must be a string, number, boolean or null",
            };
            errors.add(format!("{at}.value"), rule);
        }
        stored.push(json!({ "field": field, "op": op, "value": value }));
    }
    (mode, Value::Array(stored))
}

/// Action kinds.
pub const ACTION_TYPES: &[&str] = &["create_task", "send_email", "enroll_in_sequence", "update_field", "webhook"];

/// A checked action (stored as JSON, read back with [`Action::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A task for `assign_to` (a user id; default: the event's owner), due `due_in_hours`
    /// after the event, about the event's contact and deal.
    CreateTask { title: String, description: Option<String>, priority: String, due_in_hours: Option<i64>, assign_to: Option<i32> },
    /// A template email to the event's contact (marketing: consent and unsubscribe apply).
    SendEmail { template_id: i32 },
    /// Enrolls the event's contact in a sequence.
    EnrollInSequence { sequence_id: i32 },
    /// Sets a field of the event's contact or deal through the owning service.
    UpdateField { entity: String, field: String, value: Value },
    /// Delivers the triggering event to a webhook (by id) or URL.
    Webhook { webhook_id: Option<i32>, url: Option<String> },
}

/// Fields `update_field` may set, per entity (plain fields of the owning service's PATCH).
pub const CONTACT_FIELDS: &[&str] = &["status", "job_title", "source", "owner_id"];
pub const DEAL_FIELDS: &[&str] = &["stage", "probability", "owner_id", "description", "expected_close_date"];

impl Action {
    /// Reads a stored (or submitted) action; `Err` names the problem and the field.
    pub fn parse(v: &Value) -> Result<Self, (String, String)> {
        let obj = v.as_object().ok_or_else(|| (String::new(), "must be an object with a type".to_owned()))?;
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
        let allowed: &[&str] = match kind {
            "create_task" => &["type", "title", "description", "priority", "due_in_hours", "assign_to"],
            "send_email" => &["type", "template_id"],
            "enroll_in_sequence" => &["type", "sequence_id"],
            "update_field" => &["type", "entity", "field", "value"],
            "webhook" => &["type", "webhook_id", "url"],
            _ => return Err(("type".into(), format!("must be one of: {}", ACTION_TYPES.join(", ")))),
        };
        if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err((extra.clone(), format!("unknown field of a {kind} action")));
        }
        let id = |key: &str| -> Result<i32, (String, String)> {
            obj.get(key)
                .and_then(Value::as_i64)
                .and_then(|i| i32::try_from(i).ok())
                .filter(|i| *i > 0)
                .ok_or_else(|| (key.to_owned(), "required: a positive id".to_owned()))
        };
        Ok(match kind {
            "create_task" => {
                let title = obj.get("title").and_then(Value::as_str).map(str::trim).unwrap_or_default();
                if title.is_empty() || title.chars().count() > MAX_SUBJECT || !crm_web::validate::is_single_line(title) {
                    return Err(("title".into(), format!("required: one line of at most {MAX_SUBJECT} characters")));
                }
                let priority = obj.get("priority").and_then(Value::as_str).unwrap_or("normal");
                if !crate::domain::PRIORITIES.contains(&priority) {
                    return Err(("priority".into(), format!("must be one of: {}", crate::domain::PRIORITIES.join(", "))));
                }
                let due_in_hours = match obj.get("due_in_hours") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_i64().filter(|h| (0..=24 * 365).contains(h)).ok_or_else(|| ("due_in_hours".to_owned(), "must be 0 to 8760 hours".to_owned()))?),
                };
                let assign_to = match obj.get("assign_to") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(id("assign_to")?),
                };
                let description = obj.get("description").and_then(Value::as_str).map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned);
                Action::CreateTask { title: title.to_owned(), description, priority: priority.to_owned(), due_in_hours, assign_to }
            }
            "send_email" => Action::SendEmail { template_id: id("template_id")? },
            "enroll_in_sequence" => Action::EnrollInSequence { sequence_id: id("sequence_id")? },
            "update_field" => {
                let entity = obj.get("entity").and_then(Value::as_str).unwrap_or_default();
                let fields = match entity {
                    "contact" => CONTACT_FIELDS,
                    "deal" => DEAL_FIELDS,
                    _ => return Err(("entity".into(), "must be one of: contact, deal".into())),
                };
                let field = obj.get("field").and_then(Value::as_str).unwrap_or_default();
                if !fields.contains(&field) {
                    return Err(("field".into(), format!("a {entity} field: one of {}", fields.join(", "))));
                }
                let value = obj.get("value").cloned().ok_or_else(|| ("value".to_owned(), "required (null clears the field)".to_owned()))?;
                Action::UpdateField { entity: entity.to_owned(), field: field.to_owned(), value }
            }
            _ => {
                let webhook_id = match obj.get("webhook_id") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(id("webhook_id")?),
                };
                let url = obj.get("url").and_then(Value::as_str).map(str::trim).map(str::to_owned);
                if webhook_id.is_some() == url.is_some() {
                    return Err(("webhook_id".into(), "give webhook_id or url".into()));
                }
                Action::Webhook { webhook_id, url }
            }
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateTask { .. } => "create_task",
            Self::SendEmail { .. } => "send_email",
            Self::EnrollInSequence { .. } => "enroll_in_sequence",
            Self::UpdateField { .. } => "update_field",
            Self::Webhook { .. } => "webhook",
        }
    }
}

/// Checks the actions; returns them parsed and in their stored form.
pub fn check_actions(errors: &mut FieldErrors, actions: &Value) -> Vec<Action> {
    let Some(list) = actions.as_array().filter(|l| !l.is_empty() && l.len() <= MAX_ACTIONS) else {
        errors.add("actions", format!("must be a list of 1 to {MAX_ACTIONS} actions"));
        return vec![];
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        match Action::parse(a) {
            Ok(action) => out.push(action),
            Err((field, message)) if field.is_empty() => errors.add(format!("actions[{i}]"), message),
            Err((field, message)) => errors.add(format!("actions[{i}].{field}"), message),
        }
    }
    out
}

/// The event types a rule may be triggered by: every event of the platform.
pub fn known_events() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Vec::new();
    all.extend_from_slice(crm_client_auth::subjects::ALL);
    all.extend_from_slice(crm_client_tenant::subjects::ALL);
    all.extend_from_slice(crm_client_contact::subjects::ALL);
    all.extend_from_slice(crm_client_deal::subjects::ALL);
    all.extend_from_slice(crm_client_communication::subjects::ALL);
    for extra in [crate::consumers::CONTACT_BECAME_INACTIVE, crate::consumers::CONTACT_CONSENT_CHANGED] {
        if !all.contains(&extra) {
            all.push(extra);
        }
    }
    all.retain(|s| *s != crm_client_communication::subjects::EMAIL_QUEUED);
    all
}

/// The contact an event is about: `contact_id`, `primary_contact_id`, `contact.id`, or the
/// record itself for `contact.*` events.
pub fn event_contact(event_type: &str, data: &Value) -> Option<i32> {
    let id = |v: Option<&Value>| v.and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok()).filter(|i| *i > 0);
    id(data.get("contact_id"))
        .or_else(|| id(data.get("primary_contact_id")))
        .or_else(|| id(lookup(data, "contact.id")))
        .or_else(|| event_type.starts_with("contact.").then(|| id(data.get("id"))).flatten())
}

/// The deal an event is about: `deal_id`, `deal.id`, or the record itself for `deal.*`.
pub fn event_deal(event_type: &str, data: &Value) -> Option<i32> {
    let id = |v: Option<&Value>| v.and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok()).filter(|i| *i > 0);
    id(data.get("deal_id")).or_else(|| id(lookup(data, "deal.id"))).or_else(|| event_type.starts_with("deal.").then(|| id(data.get("id"))).flatten())
}

/// Whose the event's record is: `owner_id`, `assigned_to`, or the actor.
pub fn event_owner(data: &Value, actor: Option<&str>) -> Option<i32> {
    let id = |v: Option<&Value>| v.and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok()).filter(|i| *i > 0);
    id(data.get("owner_id")).or_else(|| id(data.get("assigned_to"))).or_else(|| actor.and_then(|a| a.parse().ok()).filter(|a: &i32| *a > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: &str, op: &str, value: Value) -> Condition {
        Condition { field: field.into(), op: Op::parse(op).unwrap(), value }
    }

    #[test]
    fn typed_comparisons() {
        let data = json!({"value": 12500.0, "title": "Renewal 2026", "stage": "closed_won", "tags": ["vip", "eu"],
            "deal": {"id": 7}, "at": "2026-03-14T10:00:00Z", "owner_id": null});
        assert!(cond("value", "gte", json!(12500)).holds(&data));
        assert!(!cond("value", "gt", json!(12500)).holds(&data));
        assert!(cond("value", "lt", json!(20000)).holds(&data));
        assert!(cond("deal.id", "eq", json!(7)).holds(&data));
        assert!(cond("data.deal.id", "in", json!([1, 7])).holds(&data));
        assert!(cond("title", "contains", json!("renewal")).holds(&data));
        assert!(cond("tags", "contains", json!("vip")).holds(&data));
        assert!(cond("stage", "ne", json!("closed_lost")).holds(&data));
        assert!(cond("at", "gt", json!("2026-03-14T09:00:00+00:00")).holds(&data));
        assert!(!cond("missing", "eq", json!(1)).holds(&data));
        assert!(cond("owner_id", "ne", json!(3)).holds(&data), "null is not 3");
        assert!(!cond("title", "gt", json!(3)).holds(&data), "mixed kinds do not compare");
        let cs = [cond("value", "gt", json!(1_000_000)), cond("stage", "eq", json!("closed_won"))];
        assert!(matches("any", &cs, &data));
        assert!(!matches("all", &cs, &data));
        assert!(matches("all", &[], &data));
    }

    #[test]
    fn conditions_and_actions_are_checked_field_by_field() {
        let mut errors = FieldErrors::new();
        let (mode, stored) = check_conditions(&mut errors, None, Some(json!({"any": [{"field": "value", "op": "gte", "value": 10}]})));
        assert!(errors.is_empty());
        assert_eq!(mode, "any");
        assert_eq!(stored_conditions(&stored), vec![cond("value", "gte", json!(10))]);
        check_conditions(&mut errors, Some("most"), Some(json!([{"field": "", "op": "like", "value": 1}, {"field": "x", "op": "in", "value": 3}])));
        check_actions(&mut errors, &json!([{"type": "send_email"}, {"type": "teleport"}, {"type": "create_task", "title": "Call", "extra": 1}]));
        let err = errors.into_result().unwrap_err();
        let fields: Vec<String> = err.details().unwrap()["fields"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            fields,
            ["actions[0].template_id", "actions[1].type", "actions[2].extra", "conditions[0].field", "conditions[0].op", "conditions[1].value", "match"]
        );
    }

    #[test]
    fn sequences_take_hours_or_minutes() {
        let mut errors = FieldErrors::new();
        let input: NewSequence = serde_json::from_value(json!({"name": "Onboarding", "steps": [
            {"template_id": 1, "delay_hours": 0}, {"template_id": 2, "delay_hours": 48}, {"template_id": 3, "delay_minutes": 5}]}))
        .unwrap();
        let s = check_sequence(&mut errors, input);
        assert!(errors.is_empty());
        assert_eq!(s.steps, vec![(1, 0), (2, 2880), (3, 5)]);
        let bad: NewSequence = serde_json::from_value(json!({"name": "", "steps": [{"template_id": 0, "delay_hours": -1}]})).unwrap();
        check_sequence(&mut errors, bad);
        let err = errors.into_result().unwrap_err();
        let fields: Vec<String> = err.details().unwrap()["fields"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(fields, ["name", "steps[0].delay_hours", "steps[0].template_id"]);
    }

    #[test]
    fn events_name_their_contact_deal_and_owner() {
        let won = json!({"id": 5, "title": "T", "owner_id": 2, "primary_contact_id": 10});
        assert_eq!(event_contact("deal.closed_won", &won), Some(10));
        assert_eq!(event_deal("deal.closed_won", &won), Some(5));
        assert_eq!(event_owner(&won, Some("1")), Some(2));
        let contact = json!({"id": 9, "first_name": "Ada"});
        assert_eq!(event_contact("contact.updated", &contact), Some(9));
        assert_eq!(event_deal("contact.updated", &contact), None);
        assert_eq!(event_owner(&contact, Some("4")), Some(4));
    }
}
