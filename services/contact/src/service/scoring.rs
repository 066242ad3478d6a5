//! Lead scores (issue 16; seeds 000-002): per-tenant scoring rules (`/scoring/rules`), the
//! `score` column of contacts kept current from events, and `GET /contacts/{id}/score`
//! explaining the points.
//!
//! A contact's score is the sum over the enabled rules:
//! * `field_value`: `points` once when the contact's field equals `equals` (or, with
//!   `"present": true`, has any value). Fields: status, source, job_title, city, country,
//!   email, phone, tags (contains) and `cf.<key>` (a custom field; a multi_select contains).
//! * `activity_count`, `email_opened`, `email_clicked`: `points` per completed activity (of
//!   `activity_type` when given) / email open / link click in the last `window_days` (default
//!   30), counting at most `max_count` (default 10) of the newest; with `half_life_days`, each
//!   one's points halve every `half_life_days` (decay: old engagement weighs less).
//!
//! The sum is rounded to a whole number. It is recomputed whenever a signal of the contact
//! arrives (`activity.logged`, `email.opened`, `email.clicked`) or the contact changes
//! (`contact.updated`, `contact.created`); the explanation endpoint computes it live, so it
//! also shows decay since the last recompute.

use chrono::{DateTime, Duration, Utc};
use crm_client_contact::ContactDetails;
use crm_client_contact::subjects::{SCORING_RULE_CREATED, SCORING_RULE_DELETED, SCORING_RULE_UPDATED};
use crm_events::publish;
use crm_tenant::TenantTx;
use crm_web::{ApiError, Can, ETag, FieldErrors, IfMatch, perm};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::repo::scoring as repo;

/// Rules per tenant, at most.
pub const MAX_RULES: usize = 100;
/// Longest window of an engagement rule (days).
pub const MAX_WINDOW_DAYS: i64 = 3650;

/// What a rule gives points for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    FieldValue,
    ActivityCount,
    EmailOpened,
    EmailClicked,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FieldValue => "field_value",
            Self::ActivityCount => "activity_count",
            Self::EmailOpened => "email_opened",
            Self::EmailClicked => "email_clicked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::FieldValue, Self::ActivityCount, Self::EmailOpened, Self::EmailClicked].into_iter().find(|k| k.as_str() == raw)
    }

    /// The `contact_engagement.kind` an engagement rule counts.
    fn signal(self) -> Option<&'static str> {
        match self {
            Self::FieldValue => None,
            Self::ActivityCount => Some("activity"),
            Self::EmailOpened => Some("email_opened"),
            Self::EmailClicked => Some("email_clicked"),
        }
    }
}

/// The settings of a rule (which ones apply depends on `kind`; see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// field_value: status, source, job_title, city, country, email, phone, tags, cf.<key>.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// field_value: the value that earns the points (compared case-insensitively as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Any JSON value (text, number, boolean): `{}` in the OpenAPI document.
    #[schema(value_type = Option<Value>)]
    pub equals: Option<Value>,
    /// field_value: points for any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    /// Engagement: days counted back from now (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_days: Option<i64>,
    /// Engagement: at most this many count (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<i64>,
    /// Engagement: points halve every this many days (no decay when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life_days: Option<f64>,
    /// activity_count: only activities of this type (call, meeting, email, note, task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_type: Option<String>,
}

/// A scoring rule (`GET /scoring/rules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoringRule {
    pub id: i32,
    pub name: String,
    pub kind: RuleKind,
    pub config: RuleConfig,
    /// -1000..=1000 (negative rules lower the score).
    pub points: i32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `null` for the default rules every tenant starts with.
    pub created_by: Option<i32>,
}

/// `GET /scoring/rules`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScoringRuleList {
    pub data: Vec<ScoringRule>,
}

/// Body of `POST /scoring/rules` and `PUT /scoring/rules/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScoringRule {
    pub name: String,
    /// field_value, activity_count, email_opened, email_clicked
    pub kind: String,
    #[serde(default)]
    pub config: RuleConfig,
    pub points: i32,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A validated rule, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleWrite {
    pub name: String,
    pub kind: RuleKind,
    pub config: RuleConfig,
    pub points: i32,
    pub enabled: bool,
}

const FIELDS: [&str; 8] = ["status", "source", "job_title", "city", "country", "email", "phone", "tags"];

impl NewScoringRule {
    pub fn validate(self, errors: &mut FieldErrors) -> RuleWrite {
        let name = crm_web::validate::line(errors, "name", Some(&self.name), 100).unwrap_or_else(|| {
            errors.add("name", "required");
            String::new()
        });
        let kind = RuleKind::parse(self.kind.trim()).unwrap_or_else(|| {
            errors.add("kind", "must be one of: field_value, activity_count, email_opened, email_clicked");
            RuleKind::FieldValue
        });
        if !(-1000..=1000).contains(&self.points) {
            errors.add("points", "from -1000 to 1000");
        }
        let c = &self.config;
        if kind == RuleKind::FieldValue {
            match c.field.as_deref() {
                Some(f) if FIELDS.contains(&f) || f.strip_prefix("cf.").is_some_and(crate::service::custom_fields::is_key) => {}
                _ => errors.add("config.field", format!("one of {}, or cf.<key>", FIELDS.join(", "))),
            }
            if c.equals.is_none() == (c.present != Some(true)) {
                errors.add("config.equals", "give either `equals` or `\"present\": true`");
            }
            if c.window_days.is_some() || c.max_count.is_some() || c.half_life_days.is_some() || c.activity_type.is_some() {
                errors.add("config", "field_value takes only field and equals or present");
            }
        } else {
            if c.field.is_some() || c.equals.is_some() || c.present.is_some() {
                errors.add("config", "engagement rules take window_days, max_count, half_life_days (and activity_type)");
            }
            if c.window_days.is_some_and(|d| !(1..=MAX_WINDOW_DAYS).contains(&d)) {
                errors.add("config.window_days", format!("from 1 to {MAX_WINDOW_DAYS}"));
            }
            if c.max_count.is_some_and(|n| !(1..=1000).contains(&n)) {
                errors.add("config.max_count", "from 1 to 1000");
            }
            if c.half_life_days.is_some_and(|h| !(h.is_finite() && h > 0.0 && h <= MAX_WINDOW_DAYS as f64)) {
                errors.add("config.half_life_days", format!("more than 0, at most {MAX_WINDOW_DAYS}"));
            }
            if c.activity_type.is_some() && kind != RuleKind::ActivityCount {
                errors.add("config.activity_type", "only for activity_count");
            }
            if let Some(t) = &c.activity_type {
                crm_web::validate::line(errors, "config.activity_type", Some(t), 50);
            }
        }
        RuleWrite { name, kind, config: self.config, points: self.points, enabled: self.enabled }
    }
}

// ---------------------------------------------------------------------------------------
// Computing

/// One engagement signal of a contact (`contact_engagement`).
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub kind: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// The points one rule gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreItem {
    pub rule_id: i32,
    pub rule: String,
    pub kind: RuleKind,
    /// This rule's contribution (decayed, unrounded).
    pub points: f64,
    /// How many signals counted (engagement rules; 1 or 0 for field_value).
    pub count: i64,
}

/// `GET /contacts/{id}/score`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreExplanation {
    pub contact_id: i32,
    /// The sum of `items`, rounded: what `score` is now.
    pub score: i32,
    /// The value stored on the contact (recomputed at its last signal or change).
    pub stored_score: i32,
    pub computed_at: DateTime<Utc>,
    /// Every enabled rule that gives points (rules giving none are left out).
    pub items: Vec<ScoreItem>,
}

/// The contact's value of a `field_value` rule's field, as texts (several for tags and
/// multi_select).
fn field_values(contact: &ContactDetails, field: &str) -> Vec<String> {
    let one = |s: &str| if s.is_empty() { vec![] } else { vec![s.to_lowercase()] };
    match field {
        "status" => vec![contact.status.as_str().to_owned()],
        "source" => one(&contact.source),
        "job_title" => one(&contact.job_title),
        "city" => one(&contact.address.city),
        "country" => one(&contact.address.country),
        "email" => one(&contact.email),
        "phone" => one(&contact.phone),
        "tags" => contact.tags.clone(),
        f => match f.strip_prefix("cf.").and_then(|k| contact.custom_fields.get(k)) {
            Some(Value::Array(items)) => items.iter().map(value_text).filter(|s| !s.is_empty()).collect(),
            Some(Value::Null) | None => vec![],
            Some(v) => vec![value_text(v)].into_iter().filter(|s| !s.is_empty()).collect(),
        },
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_lowercase(),
        Value::Null => String::new(),
        other => other.to_string().to_lowercase(),
    }
}

/// The score of `contact` under `rules` with its `signals`, at `now`.
pub fn compute(rules: &[ScoringRule], contact: &ContactDetails, signals: &[Signal], now: DateTime<Utc>) -> (i32, Vec<ScoreItem>) {
    let mut items = Vec::new();
    for rule in rules.iter().filter(|r| r.enabled) {
        let c = &rule.config;
        let (points, count) = match rule.kind.signal() {
            None => {
                let values = field_values(contact, c.field.as_deref().unwrap_or_default());
                let hit = match &c.equals {
                    Some(want) => values.contains(&value_text(want)),
                    None => !values.is_empty(),
                };
                if hit { (f64::from(rule.points), 1) } else { (0.0, 0) }
            }
            Some(kind) => {
                let since = now - Duration::days(c.window_days.unwrap_or(30));
                let mut hits: Vec<&Signal> = signals
                    .iter()
                    // No upper bound: a signal stamped a little after `now` (the publishing
                    // host's clock ahead of this one) counts now, as fresh, instead of being
                    // left out of the stored score until the next recompute.
                    .filter(|s| s.kind == kind && s.at > since)
                    .filter(|s| c.activity_type.as_ref().is_none_or(|t| s.detail.as_deref() == Some(t.as_str())))
                    .collect();
                hits.sort_by(|a, b| b.at.cmp(&a.at));
                hits.truncate(c.max_count.unwrap_or(10).max(0) as usize);
                let points: f64 = hits
                    .iter()
                    .map(|s| {
                        let age_days = (now - s.at).num_seconds().max(0) as f64 / 86_400.0;
                        let decay = c.half_life_days.map_or(1.0, |h| 0.5f64.powf(age_days / h));
                        f64::from(rule.points) * decay
                    })
                    .sum();
                (points, hits.len() as i64)
            }
        };
        if count > 0 {
            items.push(ScoreItem { rule_id: rule.id, rule: rule.name.clone(), kind: rule.kind, points, count });
        }
    }
    let total: f64 = items.iter().map(|i| i.points).sum();
    (total.round().clamp(i32::MIN as f64, i32::MAX as f64) as i32, items)
}

/// The longest window of the engagement rules (signals older than it never count).
fn longest_window(rules: &[ScoringRule]) -> i64 {
    rules.iter().filter(|r| r.kind.signal().is_some()).map(|r| r.config.window_days.unwrap_or(30)).max().unwrap_or(0)
}

/// Recomputes and stores the score of `contact_id` (gone: nothing to do); the new score.
///
/// The contact row is locked before the signals are read: two consumers recomputing the same
/// contact at once (an open and a click, or a signal and `contact.updated`) then run one after
/// the other, and the second reads what the first committed. Without the lock the slower one
/// writes a score computed from a snapshot that lacks the other's signal (a lost update).
pub async fn recompute(tx: &TenantTx, contact_id: i32, now: DateTime<Utc>) -> Result<Option<i32>, ApiError> {
    if !repo::lock_contact(tx, contact_id).await? {
        return Ok(None);
    }
    let Some(contact) = crate::repo::contacts::contact_by_id(tx, contact_id).await? else { return Ok(None) };
    let rules = repo::rules(tx).await?;
    let signals = repo::signals(tx, contact_id, now - Duration::days(longest_window(&rules))).await?;
    let (score, _) = compute(&rules, &contact, &signals, now);
    repo::set_score(tx, contact_id, score).await?;
    Ok(Some(score))
}

/// A consumer's signal: recorded once per event (`event_id`), then the score recomputed.
/// A contact that no longer exists is skipped.
pub async fn record_signal(tx: &TenantTx, event_id: &str, contact_id: i32, kind: &'static str, detail: Option<&str>, at: DateTime<Utc>) -> Result<(), ApiError> {
    if crate::repo::contacts::contact_by_id(tx, contact_id).await?.is_none() {
        return Ok(());
    }
    repo::insert_signal(tx, event_id, contact_id, kind, detail, at).await?;
    recompute(tx, contact_id, Utc::now()).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Use cases

/// `GET /contacts/{id}/score`.
pub async fn explain(state: &AppState, can: &Can<perm::ContactsRead>, contact_id: i32) -> Result<ScoreExplanation, ApiError> {
    let now = Utc::now();
    // One snapshot: read statement by statement, a consumer committing in between made the
    // stored score newer than the signals the items were computed from.
    let tx = state.db.tenant_snapshot(&can.tenant_id).await?;
    let contact = crate::repo::contacts::contact_by_id(&tx, contact_id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    let rules = repo::rules(&tx).await?;
    let signals = repo::signals(&tx, contact_id, now - Duration::days(longest_window(&rules))).await?;
    let stored_score = repo::stored_score(&tx, contact_id).await?.unwrap_or_default();
    tx.commit().await?;
    let (score, items) = compute(&rules, &contact, &signals, now);
    Ok(ScoreExplanation { contact_id, score, stored_score, computed_at: now, items })
}

/// `GET /scoring/rules`.
pub async fn list(state: &AppState, can: &Can<perm::AutomationRead>) -> Result<ScoringRuleList, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let data = repo::rules_all(&tx).await?;
    tx.commit().await?;
    Ok(ScoringRuleList { data })
}

fn validated(input: NewScoringRule) -> Result<RuleWrite, ApiError> {
    let mut errors = FieldErrors::new();
    let w = input.validate(&mut errors);
    errors.into_result()?;
    Ok(w)
}

/// `POST /scoring/rules`; publishes `scoring_rule.created`. Scores follow at each contact's
/// next signal or change.
pub async fn create(state: &AppState, can: &Can<perm::AutomationWrite>, input: NewScoringRule) -> Result<ScoringRule, ApiError> {
    let w = validated(input)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    if repo::rules_all(&tx).await?.len() >= MAX_RULES {
        return Err(ApiError::validation([("body", format!("at most {MAX_RULES} scoring rules"))]));
    }
    let rule = repo::insert_rule(&tx, &w, can.user_id).await?;
    publish(&tx, Some(can.user_id), SCORING_RULE_CREATED, &rule).await?;
    tx.commit().await?;
    Ok(rule)
}

/// `PUT /scoring/rules/{id}` (`If-Match`); publishes `scoring_rule.updated`.
pub async fn replace(state: &AppState, can: &Can<perm::AutomationWrite>, id: i32, if_match: &IfMatch, input: NewScoringRule) -> Result<ScoringRule, ApiError> {
    let w = validated(input)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::rule(&tx, id).await?.ok_or_else(|| ApiError::not_found("scoring rule"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    let rule = repo::update_rule(&tx, id, &w).await?;
    publish(&tx, Some(can.user_id), SCORING_RULE_UPDATED, &rule).await?;
    tx.commit().await?;
    Ok(rule)
}

/// `DELETE /scoring/rules/{id}` (`If-Match`); publishes `scoring_rule.deleted`.
pub async fn delete(state: &AppState, can: &Can<perm::AutomationWrite>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::rule(&tx, id).await?.ok_or_else(|| ApiError::not_found("scoring rule"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    repo::delete_rule(&tx, id).await?;
    publish(&tx, Some(can.user_id), SCORING_RULE_DELETED, &current).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(id: i32, kind: RuleKind, config: Value, points: i32) -> ScoringRule {
        ScoringRule {
            id,
            name: format!("r{id}"),
            kind,
            config: serde_json::from_value(config).unwrap(),
            points,
            enabled: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            created_by: None,
        }
    }

    fn contact() -> ContactDetails {
        serde_json::from_value(json!({
            "id": 1, "first_name": "A", "last_name": "B", "email": "a@b.co", "phone": "", "job_title": "CTO",
            "company_id": null, "company_name": null, "owner_id": null, "owner_name": null, "status": "prospect",
            "source": "", "address": {"street": "", "city": "", "state": "", "country": "DE", "postal_code": ""},
            "custom_fields": {"tier": "gold"}, "notes": "", "tags": ["vip"], "created_at": Utc::now(), "created_by": 1, "updated_at": Utc::now()
        }))
        .unwrap()
    }

    #[test]
    fn a_signal_stamped_after_now_counts_as_fresh() {
        // The publishing service's clock a few seconds ahead of this one.
        let now = Utc::now();
        let rules = [rule(1, RuleKind::EmailOpened, json!({"window_days": 90, "half_life_days": 30}), 5)];
        let ahead = Signal { kind: "email_opened".into(), detail: None, at: now + Duration::seconds(3) };
        let (score, items) = compute(&rules, &contact(), &[ahead], now);
        assert_eq!((score, items.len()), (5, 1));
    }

    #[test]
    fn field_rules_and_engagement_with_window_cap_and_decay() {
        let now = Utc::now();
        let rules = [
            rule(1, RuleKind::FieldValue, json!({"field": "status", "equals": "Prospect"}), 15),
            rule(2, RuleKind::FieldValue, json!({"field": "cf.tier", "equals": "gold"}), 7),
            rule(3, RuleKind::FieldValue, json!({"field": "phone", "present": true}), 100),
            rule(4, RuleKind::EmailOpened, json!({"window_days": 90, "max_count": 2}), 5),
            rule(5, RuleKind::EmailClicked, json!({"window_days": 90, "half_life_days": 10}), 10),
        ];
        let s = |kind: &str, days: i64| Signal { kind: kind.into(), detail: None, at: now - Duration::days(days) };
        // Three opens (capped at 2), one too old; one click 10 days ago (half the points).
        let signals = [s("email_opened", 1), s("email_opened", 2), s("email_opened", 3), s("email_opened", 100), s("email_clicked", 10)];
        let (score, items) = compute(&rules, &contact(), &signals, now);
        assert_eq!(score, 15 + 7 + 10 + 5);
        assert_eq!(items.len(), 4);
        assert_eq!(items.iter().find(|i| i.rule_id == 4).map(|i| i.count), Some(2));
        assert!((items.iter().find(|i| i.rule_id == 5).map(|i| i.points).unwrap_or_default() - 5.0).abs() < 0.01);
    }

    #[test]
    fn rules_are_validated() {
        let bad: NewScoringRule =
            serde_json::from_value(json!({"name": "", "kind": "deal_stage", "points": 5000, "config": {"window_days": 0}})).unwrap();
        let mut e = FieldErrors::new();
        bad.validate(&mut e);
        let fields = e.into_result().unwrap_err().details().cloned().unwrap_or_default()["fields"].clone();
        for f in ["name", "kind", "points"] {
            assert!(fields.get(f).is_some(), "{f}: {fields}");
        }
        let ok: NewScoringRule = serde_json::from_value(json!({"name": "Gold", "kind": "field_value", "points": 5, "config": {"field": "cf.tier", "equals": "gold"}})).unwrap();
        let mut e = FieldErrors::new();
        ok.validate(&mut e);
        assert!(e.is_empty());
    }
}
