//! Automation rules (issue 15): when an event of the rule's trigger matches its conditions,
//! its actions run. Nothing fails silently: every match is a recorded run
//! (`GET /automation/rules/{id}/runs`: status, error, attempts, the event).
//!
//! The trigger consumer ([`match_event`]) records a `pending` run per matching rule in the
//! consumer's transaction (durable, once per event and rule); the poll loop
//! ([`process_one`]) claims it (`FOR UPDATE SKIP LOCKED`) and runs the actions in one
//! transaction: all of a run's local effects (tasks, emails, enrollments, webhook
//! deliveries) commit together with its `succeeded`, or none do and it is `failed`, retried
//! with back-off, then `parked` (`POST /automation/runs/{id}/retry` runs it again).
//!
//! Loops: the events a run causes carry its depth + 1 (`automation_lineage`); an event at
//! [`MAX_DEPTH`] starts no run, its would-be runs are recorded as `loop_stopped`.

use chrono::Utc;
use crm_client_communication::{Rule, RuleRun};
use crm_events::Envelope;
use crm_tenant::{DbError, TenantId, TenantTx};
use crm_web::{ApiError, Can, ETag, FieldErrors, IfMatch, Page, QueryParams, codes, parse_limit, perm};
use serde_json::{Value, json};

use super::marketing::{self, Outcome};
use super::webhooks::{self, WebhookTarget};
use crate::AppState;
use crate::automation::{Action, MAX_DEPTH, NewRule, RulePatch, check_actions, check_conditions, event_contact, event_deal, event_owner, known_events, matches, stored_conditions};
use crate::domain::{MAX_DESCRIPTION, MAX_SUBJECT, TaskWrite, optional_body, required_line};
use crate::repo::rules::{self as repo, RuleWrite};

pub const RUN_STATUSES: &[&str] = &["pending", "succeeded", "failed", "parked", "loop_stopped"];

/// Checks a rule body: fields, the trigger (a known event), conditions, actions, and the
/// records actions name (templates, sequences, webhooks) in `tx`.
async fn check(state: &AppState, tx: &TenantTx, input: NewRule) -> Result<RuleWrite, ApiError> {
    let mut errors = FieldErrors::new();
    let name = required_line(&mut errors, "name", &input.name, MAX_SUBJECT);
    let description = optional_body(&mut errors, "description", input.description.as_deref(), MAX_DESCRIPTION);
    let trigger = input.trigger.event.trim().to_owned();
    if !known_events().contains(&trigger.as_str()) {
        errors.add("trigger.event", "must be an event type of the platform (docs/asyncapi.yaml), e.g. deal.closed_won");
    }
    let (match_mode, conditions) = check_conditions(&mut errors, input.match_mode.as_deref(), input.conditions);
    let actions = check_actions(&mut errors, &input.actions);
    errors.into_result()?;
    let mut missing = FieldErrors::new();
    for (i, action) in actions.iter().enumerate() {
        match action {
            Action::SendEmail { template_id } => match crate::repo::templates::by_id(tx, *template_id).await? {
                None => missing.add(format!("actions[{i}].template_id"), format!("email template {template_id} does not exist")),
                Some(t) if !t.template.is_active => missing.add(format!("actions[{i}].template_id"), format!("email template {template_id} is not active")),
                Some(_) => {}
            },
            Action::EnrollInSequence { sequence_id } => {
                if crate::repo::sequences::by_id(tx, *sequence_id).await?.is_none() {
                    missing.add(format!("actions[{i}].sequence_id"), format!("sequence {sequence_id} does not exist"));
                }
            }
            Action::Webhook { webhook_id, url } => {
                let target = match (webhook_id, url) {
                    (Some(id), _) => WebhookTarget::Id(*id),
                    (None, url) => WebhookTarget::Url(url.clone().unwrap_or_default()),
                };
                let field = if webhook_id.is_some() { format!("actions[{i}].webhook_id") } else { format!("actions[{i}].url") };
                webhooks::check_rule_target(state, tx, &target, &field).await?;
            }
            Action::UpdateField { .. } | Action::CreateTask { .. } => {}
        }
    }
    if !missing.is_empty() {
        let details = missing.into_result().err().and_then(|e| e.details().cloned()).unwrap_or_default();
        return Err(ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, "an action names a record that cannot be used").with_details(details));
    }
    let actions = input.actions.as_array().cloned().map(Value::Array).unwrap_or_default();
    Ok(RuleWrite { name, description, enabled: input.enabled.unwrap_or(true), trigger_event: trigger, match_mode, conditions, actions })
}

fn name_taken(e: DbError) -> ApiError {
    let api = ApiError::from(e);
    if api.code() == codes::CONFLICT {
        ApiError::conflict(codes::CONFLICT, "a rule with this name exists").with_details(json!({"fields": {"name": "taken"}}))
    } else {
        api
    }
}

pub async fn create(state: &AppState, can: &Can<perm::AutomationWrite>, input: NewRule) -> Result<Rule, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let write = check(state, &tx, input).await?;
    let rule = repo::insert(&tx, &write, Some(can.user_id), None).await.map_err(name_taken)?.ok_or_else(super::no_row)?;
    tx.commit().await?;
    Ok(rule)
}

/// Creates the rule under `seed_key` unless it exists (`crm demo`); returns it either way.
pub async fn seed(tx: &TenantTx, state: &AppState, seed_key: &str, input: NewRule) -> Result<Rule, ApiError> {
    if let Some(rule) = repo::by_seed_key(tx, seed_key).await? {
        return Ok(rule);
    }
    let write = check(state, tx, input).await?;
    repo::insert(tx, &write, None, Some(seed_key)).await?.ok_or_else(super::no_row)
}

pub async fn get(state: &AppState, can: &Can<perm::AutomationRead>, id: i32) -> Result<Rule, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let rule = repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("rule"))?;
    tx.commit().await?;
    Ok(rule)
}

/// `GET /automation/rules`: by id.
pub async fn list(state: &AppState, can: &Can<perm::AutomationRead>, params: &QueryParams) -> Result<Page<Rule>, ApiError> {
    let mut errors = FieldErrors::new();
    super::single_sort(params, &mut errors, "id");
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    let after: Option<i32> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    errors.into_result()?;
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = repo::list(&tx, after, limit).await?;
    let total = if params.count() { Some(repo::count(&tx).await?) } else { None };
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&last.id)))
}

pub async fn replace(state: &AppState, can: &Can<perm::AutomationWrite>, id: i32, if_match: &IfMatch, input: NewRule) -> Result<Rule, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("rule"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    let write = check(state, &tx, input).await?;
    let rule = repo::update(&tx, id, &write).await.map_err(name_taken)?;
    tx.commit().await?;
    Ok(rule)
}

/// `PATCH /automation/rules/{id}`: switch on or off, rename.
pub async fn patch(state: &AppState, can: &Can<perm::AutomationWrite>, id: i32, if_match: &IfMatch, patch: RulePatch) -> Result<Rule, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("rule"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    let mut errors = FieldErrors::new();
    let name = match &patch.name {
        Some(n) => required_line(&mut errors, "name", n, MAX_SUBJECT),
        None => current.name.clone(),
    };
    errors.into_result()?;
    let write = RuleWrite {
        name,
        description: Some(current.description.clone()).filter(|d| !d.is_empty()),
        enabled: patch.enabled.unwrap_or(current.enabled),
        trigger_event: current.trigger["event"].as_str().unwrap_or_default().to_owned(),
        match_mode: current.match_mode.clone(),
        conditions: current.conditions.clone(),
        actions: current.actions.clone(),
    };
    let rule = repo::update(&tx, id, &write).await.map_err(name_taken)?;
    tx.commit().await?;
    Ok(rule)
}

/// `DELETE /automation/rules/{id}`: the rule and its runs.
pub async fn delete(state: &AppState, can: &Can<perm::AutomationDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("rule"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    repo::delete(&tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// `GET /automation/rules/{id}/runs`: newest first; `?status=`.
pub async fn runs(state: &AppState, can: &Can<perm::AutomationRead>, rule_id: i32, params: &QueryParams) -> Result<Page<RuleRun>, ApiError> {
    let mut errors = FieldErrors::new();
    let status = params.choice(&mut errors, "status", RUN_STATUSES);
    super::single_sort(params, &mut errors, "-created_at");
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    let before: Option<i32> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    errors.into_result()?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    repo::by_id(&tx, rule_id).await?.ok_or_else(|| ApiError::not_found("rule"))?;
    let rows = repo::runs(&tx, rule_id, status.as_deref(), before, limit).await?;
    let total = if params.count() { Some(repo::count_runs(&tx, rule_id, status.as_deref()).await?) } else { None };
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&last.id)))
}

/// `POST /automation/runs/{id}/retry`: a `failed` or `parked` run is `pending` again and runs
/// at once (409 for a run that is pending or succeeded, or stopped as a loop).
pub async fn retry(state: &AppState, can: &Can<perm::AutomationWrite>, id: i32) -> Result<RuleRun, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    match repo::retry_run(&tx, id).await? {
        None => return Err(ApiError::not_found("run")),
        Some(false) => return Err(ApiError::conflict(codes::CONFLICT, "only a failed or parked run can be retried")),
        Some(true) => {}
    }
    let run = repo::run_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("run"))?;
    tx.commit().await?;
    state.automation.touch(&can.tenant_id);
    Ok(run)
}

/// The rule chain depth of an event: recorded for events rules caused (`event:<id>`), or for
/// an update a rule made in another service (`<type>:<record id>`); 0 otherwise.
async fn depth_of(tx: &TenantTx, event: &Envelope) -> Result<i32, DbError> {
    if let Some(d) = repo::take_depth(tx, &format!("event:{}", event.id)).await? {
        return Ok(d);
    }
    if let Some(id) = event.data.get("id").and_then(Value::as_i64)
        && let Some(d) = repo::take_depth(tx, &format!("{}:{id}", event.r#type)).await?
    {
        return Ok(d);
    }
    Ok(0)
}

/// Trigger consumer: records a run of every enabled rule of this event type whose
/// conditions match (`pending`, or `loop_stopped` at the depth limit). Returns how many.
pub async fn match_event(tx: &TenantTx, event: &Envelope) -> Result<usize, DbError> {
    let rules = repo::enabled_for(tx, &event.r#type).await?;
    if rules.is_empty() {
        return Ok(0);
    }
    let depth = depth_of(tx, event).await?;
    let mut recorded = 0;
    for rule in rules {
        if !matches(&rule.match_mode, &stored_conditions(&rule.conditions), &event.data) {
            continue;
        }
        let (status, error) = if depth >= MAX_DEPTH {
            tracing::warn!(rule_id = rule.id, event_id = event.id, depth, "automation loop stopped");
            ("loop_stopped", Some(format!("not run: the event was caused by a chain of {depth} rule runs (limit {MAX_DEPTH}); a rule loop?")))
        } else {
            ("pending", None)
        };
        if repo::insert_run(tx, rule.id, event, depth, status, error.as_deref()).await?.is_some() {
            recorded += 1;
        }
    }
    Ok(recorded)
}

/// Runs one due rule run of `tenant`, if any; `true` when one was handled.
pub async fn process_one(state: &AppState, tenant: &TenantId) -> Result<bool, DbError> {
    let tx = state.db.tenant(tenant).await?;
    let Some(due) = repo::claim_due_runs(&tx, 1).await?.pop() else {
        tx.commit().await?;
        return Ok(false);
    };
    let run = due.run;
    tx.execute("SAVEPOINT rule_run", &[]).await?;
    match execute(state, &tx, &due.rule, &run).await {
        Ok(results) => {
            repo::finish_run(&tx, run.id, "succeeded", None, &Value::Array(results), None).await?;
        }
        Err((results, error)) => {
            tx.execute("ROLLBACK TO SAVEPOINT rule_run", &[]).await?;
            let next = state.settings.automation.retry_at(run.attempts + 1);
            let status = if next.is_some() { "failed" } else { "parked" };
            tracing::warn!(rule_id = due.rule.id, run_id = run.id, %error, status, "automation run failed");
            repo::finish_run(&tx, run.id, status, Some(&error), &Value::Array(results), next).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Runs the rule's actions in order for the run's event; on the first failure, the results
/// so far and the error (naming the action).
async fn execute(state: &AppState, tx: &TenantTx, rule: &Rule, run: &RuleRun) -> Result<Vec<Value>, (Vec<Value>, String)> {
    let event: Envelope = serde_json::from_value(run.event.clone()).map_err(|e| (vec![], format!("the recorded event does not decode: {e}")))?;
    let actions = rule.actions.as_array().cloned().unwrap_or_default();
    let mut results = Vec::with_capacity(actions.len());
    for (i, raw) in actions.iter().enumerate() {
        let action = Action::parse(raw).map_err(|(f, m)| (results.clone(), format!("actions[{i}].{f}: {m}")))?;
        let key = format!("rule-run:{}:{i}", run.id);
        match act(state, tx, rule, run, &event, &action, &key).await {
            Ok(mut result) => {
                result["type"] = json!(action.kind());
                results.push(result);
            }
            Err(e) => return Err((results, format!("actions[{i}] ({}): {e}", action.kind()))),
        }
    }
    Ok(results)
}

async fn act(state: &AppState, tx: &TenantTx, rule: &Rule, run: &RuleRun, event: &Envelope, action: &Action, key: &str) -> Result<Value, String> {
    let contact = event_contact(&event.r#type, &event.data);
    let deal = event_deal(&event.r#type, &event.data);
    let depth = run.depth + 1;
    match action {
        Action::CreateTask { title, description, priority, due_in_hours, assign_to } => {
            let assignee = assign_to.or_else(|| event_owner(&event.data, event.actor.as_deref())).ok_or("the event names no owner: set assign_to")?;
            let (contact_id, _, deal_id) = super::references::without_gone(tx, contact, None, deal).await.map_err(|e| e.to_string())?;
            let mut custom_fields = crm_client_communication::CustomFields::new();
            custom_fields.insert("rule_id".into(), rule.id.into());
            custom_fields.insert("event".into(), event.r#type.clone().into());
            let task = TaskWrite {
                title: title.clone(),
                description: description.clone(),
                r#type: "follow_up".into(),
                status: "pending".into(),
                priority: priority.clone(),
                due_date: due_in_hours.map(|h| Utc::now() + chrono::Duration::hours(h)),
                reminder_at: None,
                assigned_to: assignee,
                contact_id,
                deal_id,
                completed_at: None,
                custom_fields,
            };
            let created = crate::repo::tasks::insert(tx, &task, None, Some(key)).await.map_err(|e| e.to_string())?;
            Ok(json!({ "task_id": created.map(|t| t.task.id) }))
        }
        Action::SendEmail { template_id } => {
            let contact = contact.ok_or("the event names no contact")?;
            match marketing::queue(state, tx, *template_id, contact, deal, rule.created_by, key, Some(depth)).await.map_err(|e| e.0)? {
                Outcome::Queued(email) => Ok(json!({ "email_id": email.id })),
                Outcome::Skipped(reason) => Ok(json!({ "skipped": reason })),
            }
        }
        Action::EnrollInSequence { sequence_id } => {
            let contact = contact.ok_or("the event names no contact")?;
            let enrolled = super::sequences::enroll_for_rule(tx, *sequence_id, contact, deal, rule.id, key).await.map_err(|e| e.to_string())?;
            state.automation.touch(tx.tenant_id());
            Ok(match enrolled {
                Ok(e) => json!({ "enrollment_id": e.id }),
                Err(reason) => json!({ "skipped": reason }),
            })
        }
        Action::UpdateField { entity, field, value } => {
            let id = match entity.as_str() {
                "contact" => contact.ok_or("the event names no contact")?,
                _ => deal.ok_or("the event names no deal")?,
            };
            let ctx = acting_as_creator(state, tx.tenant_id(), rule, key).await?;
            let body = json!({ field.as_str(): value });
            // The owning service publishes `contact.updated` / `deal.updated`: it carries this
            // run's depth (taken by the next such event of this record).
            crate::repo::rules::put_depth(tx, &format!("{entity}.updated:{id}"), depth).await.map_err(|e| e.to_string())?;
            match entity.as_str() {
                "contact" => state.clients.contacts.update_contact_fields(&ctx, id, &body).await.map(|_| ()),
                _ => state.clients.deals.update_deal_fields(&ctx, id, &body).await.map(|_| ()),
            }
            .map_err(|e| format!("{entity} {id}: {e}"))?;
            Ok(json!({ "entity": entity, "id": id, "field": field }))
        }
        Action::Webhook { webhook_id, url } => {
            let target = match (webhook_id, url) {
                (Some(id), _) => WebhookTarget::Id(*id),
                (None, url) => WebhookTarget::Url(url.clone().unwrap_or_default()),
            };
            let delivery = webhooks::enqueue_for_rule(state, tx, &target, event, key).await.map_err(|e| e.message().to_owned())?;
            Ok(json!({ "delivery_id": delivery }))
        }
    }
}

/// `update_field` writes in another service as the rule's creator (with the creator's current
/// role, read from auth-service): a rule can change only what its author could, and the
/// owning service's checks and events apply. A rule without creator (seeded) cannot.
async fn acting_as_creator(state: &AppState, tenant: &TenantId, rule: &Rule, key: &str) -> Result<crm_client_core::CallContext, String> {
    let creator = rule.created_by.ok_or("a rule without a creator cannot update records")?;
    let (lookup, _) = marketing::system_caller(state, tenant, None, key).map_err(|e| e.0)?;
    let user = state.clients.auth.user_basic(&lookup, creator).await.map_err(|e| format!("the rule's creator {creator}: {e}"))?;
    let role: crm_web::Role = user.role.parse().map_err(|_| format!("the rule's creator has an unknown role {}", user.role))?;
    let claims = crm_web::Claims::new(crm_web::TokenType::Access, creator, *tenant, user.email, role, state.auth.keys.issuer(), std::time::Duration::from_secs(60));
    let token = state.auth.keys.issue(&claims).map_err(|e| format!("cannot sign a token: {e}"))?;
    Ok(crm_client_core::CallContext::new(token).with_request_id(key).with_tenant(tenant.to_string()))
}
