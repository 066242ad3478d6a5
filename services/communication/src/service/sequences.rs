//! Email sequences (issue 15): templates sent to an enrolled contact on a schedule.
//!
//! Enrolling schedules every step at once (due times add up the delays). The poll loop
//! ([`super::scheduler`]) claims a due step whose previous step is done, queues its email
//! through the ordinary email path (consent, unsubscribe, templates, tracking:
//! [`super::marketing::queue`]) and marks the step `sent`, `skipped` or, after the retries,
//! `failed`, all in ONE transaction: after a crash or restart a step is either done or still
//! due, never sent twice (the email row is also unique per step). An enrollment stops when
//! the contact is unenrolled, deleted, unsubscribes or withdraws consent.

use chrono::Utc;
use crm_client_communication::{Enrollment, Sequence};
use crm_tenant::{DbError, TenantId, TenantTx};
use crm_web::{ApiError, Can, ETag, FieldErrors, IfMatch, Page, QueryParams, codes, parse_limit, perm};
use serde_json::json;

use super::marketing::{self, Outcome};
use crate::AppState;
use crate::automation::{NewEnrollment, NewSequence, check_sequence};
use crate::repo::sequences::{self as repo, EnrollmentWrite, SequenceWrite};
use crate::repo::templates as template_repo;

pub const ENROLLMENT_STATUSES: &[&str] = &["active", "completed", "stopped"];

async fn check_templates(tx: &TenantTx, steps: &[(i32, i32)]) -> Result<(), ApiError> {
    let mut errors = FieldErrors::new();
    for (i, (template_id, _)) in steps.iter().enumerate() {
        if template_repo::by_id(tx, *template_id).await?.is_none() {
            errors.add(format!("steps[{i}].template_id"), format!("email template {template_id} does not exist"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        let details = errors.into_result().err().and_then(|e| e.details().cloned()).unwrap_or_default();
        Err(ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, "a step's template does not exist").with_details(details))
    }
}

fn write_of(input: NewSequence) -> Result<SequenceWrite, ApiError> {
    let mut errors = FieldErrors::new();
    let s = check_sequence(&mut errors, input);
    errors.into_result()?;
    Ok(SequenceWrite { name: s.name, description: s.description, is_active: s.is_active, steps: s.steps })
}

fn name_taken(e: DbError) -> ApiError {
    let api = ApiError::from(e);
    if api.code() == codes::CONFLICT {
        ApiError::conflict(codes::CONFLICT, "a sequence with this name exists").with_details(json!({"fields": {"name": "taken"}}))
    } else {
        api
    }
}

pub async fn create(state: &AppState, can: &Can<perm::AutomationWrite>, input: NewSequence) -> Result<Sequence, ApiError> {
    let write = write_of(input)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    check_templates(&tx, &write.steps).await?;
    let sequence = repo::insert(&tx, &write, Some(can.user_id)).await.map_err(name_taken)?;
    tx.commit().await?;
    Ok(sequence)
}

pub async fn get(state: &AppState, can: &Can<perm::AutomationRead>, id: i32) -> Result<Sequence, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let sequence = repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("sequence"))?;
    tx.commit().await?;
    Ok(sequence)
}

/// `GET /sequences`: by name.
pub async fn list(state: &AppState, can: &Can<perm::AutomationRead>, params: &QueryParams) -> Result<Page<Sequence>, ApiError> {
    let mut errors = FieldErrors::new();
    super::single_sort(params, &mut errors, "name");
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    let after: Option<NameCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    errors.into_result()?;
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = repo::list(&tx, after.as_ref().map(|c| (c.name.as_str(), c.id)), limit).await?;
    let total = if params.count() { Some(repo::count(&tx).await?) } else { None };
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&NameCursor { name: last.name.to_lowercase(), id: last.id })))
}

/// Keyset position of the sequence list.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct NameCursor {
    name: String,
    id: i32,
}

/// `PUT /sequences/{id}`: replaces it (running enrollments keep their scheduled steps).
pub async fn replace(state: &AppState, can: &Can<perm::AutomationWrite>, id: i32, if_match: &IfMatch, input: NewSequence) -> Result<Sequence, ApiError> {
    let write = write_of(input)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("sequence"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    check_templates(&tx, &write.steps).await?;
    let sequence = repo::update(&tx, id, &write).await.map_err(name_taken)?;
    tx.commit().await?;
    Ok(sequence)
}

/// `DELETE /sequences/{id}`: the sequence, its enrollments and their schedules.
pub async fn delete(state: &AppState, can: &Can<perm::AutomationDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("sequence"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    repo::delete(&tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /sequences/{id}/enrollments`: enrolls a contact (a sales rep: only contacts it
/// owns). 409 when the contact is in the sequence already; 422 for an inactive sequence, an
/// unknown contact or deal.
pub async fn enroll(state: &AppState, can: &Can<perm::EmailsWrite>, sequence_id: i32, input: NewEnrollment) -> Result<Enrollment, ApiError> {
    let mut errors = FieldErrors::new();
    crate::domain::positive_id(&mut errors, "contact_id", Some(input.contact_id));
    let deal_id = crate::domain::positive_id(&mut errors, "deal_id", input.deal_id);
    errors.into_result()?;
    {
        let tx = state.db.tenant(&can.tenant_id).await?;
        let sequence = repo::by_id(&tx, sequence_id).await?.ok_or_else(|| ApiError::not_found("sequence"))?;
        tx.commit().await?;
        if !sequence.is_active {
            return Err(ApiError::unprocessable(codes::UNPROCESSABLE, "the sequence is not active: it takes no new enrollments"));
        }
    }
    // The contact exists (and is the rep's own); the deal too. No row lock is held meanwhile.
    let contact = state.clients.contacts.contact(&can.ctx, input.contact_id).await.map_err(|e| reference_error("contact", input.contact_id, "contact_id", e))?;
    if !can.reaches([contact.owner_id]) {
        return Err(ApiError::forbidden("a sales rep may only enroll contacts it owns"));
    }
    if let Some(id) = deal_id {
        state.clients.deals.deal(&can.ctx, id).await.map_err(|e| reference_error("deal", id, "deal_id", e))?;
    }
    let tx = state.db.tenant(&can.tenant_id).await?;
    super::references::refuse_gone(&tx, Some(input.contact_id), None, deal_id).await?;
    let write = EnrollmentWrite { sequence_id, contact_id: input.contact_id, deal_id, enrolled_by: Some(can.user_id), rule_id: None, source_event_id: None };
    let enrollment = repo::enroll(&tx, &write, Utc::now()).await?.ok_or_else(|| {
        ApiError::conflict(codes::CONFLICT, "the contact is enrolled in this sequence already").with_details(json!({"fields": {"contact_id": "already enrolled"}}))
    })?;
    tx.commit().await?;
    state.automation.touch(&can.tenant_id);
    Ok(enrollment)
}

fn reference_error(what: &str, id: i32, field: &str, e: crm_client_core::ClientError) -> ApiError {
    match e {
        crm_client_core::ClientError::NotFound => ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, format!("{what} {id} does not exist"))
            .with_details(json!({"fields": {field: format!("{what} {id} does not exist")}})),
        other => {
            tracing::warn!(error = %other, "{what} lookup failed");
            ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, codes::SERVICE_UNAVAILABLE, format!("cannot reach the {what} service, retry later"))
        }
    }
}

/// Enrolls from a rule's action, in the rule run's transaction; `None` when the contact is
/// in the sequence already (or the sequence is inactive or gone).
pub async fn enroll_for_rule(tx: &TenantTx, sequence_id: i32, contact_id: i32, deal_id: Option<i32>, rule_id: i32, key: &str) -> Result<Result<Enrollment, &'static str>, DbError> {
    let Some(sequence) = repo::by_id(tx, sequence_id).await? else { return Ok(Err("sequence_deleted")) };
    if !sequence.is_active {
        return Ok(Err("sequence_inactive"));
    }
    let (contact_gone, _, deal_gone) = crate::repo::references::which_gone(tx, Some(contact_id), None, deal_id).await?;
    if contact_gone {
        return Ok(Err("contact_deleted"));
    }
    let write = EnrollmentWrite { sequence_id, contact_id, deal_id: deal_id.filter(|_| !deal_gone), enrolled_by: None, rule_id: Some(rule_id), source_event_id: Some(key) };
    Ok(repo::enroll(tx, &write, Utc::now()).await?.ok_or("already_enrolled"))
}

/// `GET /sequences/{id}/enrollments`: newest first, each with its steps; `?status=`.
pub async fn enrollments(state: &AppState, can: &Can<perm::AutomationRead>, sequence_id: i32, params: &QueryParams) -> Result<Page<Enrollment>, ApiError> {
    let mut errors = FieldErrors::new();
    let status = params.choice(&mut errors, "status", ENROLLMENT_STATUSES);
    super::single_sort(params, &mut errors, "-created_at");
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    let before: Option<i32> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    errors.into_result()?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    repo::by_id(&tx, sequence_id).await?.ok_or_else(|| ApiError::not_found("sequence"))?;
    let rows = repo::enrollments(&tx, sequence_id, status.as_deref(), before, limit).await?;
    let total = if params.count() { Some(repo::count_enrollments(&tx, sequence_id, status.as_deref()).await?) } else { None };
    tx.commit().await?;
    Ok(Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&last.id)))
}

pub async fn enrollment(state: &AppState, can: &Can<perm::AutomationRead>, sequence_id: i32, id: i32) -> Result<Enrollment, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let e = repo::enrollment(&tx, sequence_id, id).await?.ok_or_else(|| ApiError::not_found("enrollment"))?;
    tx.commit().await?;
    Ok(e)
}

/// `DELETE /sequences/{id}/enrollments/{enrollment_id}`: unenrolls (the enrollment stays,
/// `stopped`, reason `unenrolled`; its scheduled steps are cancelled). A sales rep: its own
/// enrollments. Unenrolling a finished enrollment changes nothing.
pub async fn unenroll(state: &AppState, can: &Can<perm::EmailsWrite>, sequence_id: i32, id: i32) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let e = repo::enrollment(&tx, sequence_id, id).await?.ok_or_else(|| ApiError::not_found("enrollment"))?;
    if !can.reaches([e.enrolled_by]) {
        return Err(ApiError::forbidden("a sales rep may only unenroll the enrollments it made"));
    }
    repo::stop(&tx, Some(id), None, "unenrolled").await?;
    tx.commit().await?;
    Ok(())
}

/// Stops every active enrollment of a contact (unsubscribed, consent withdrawn).
pub async fn stop_for_contact(tx: &TenantTx, contact_id: i32, reason: &str) -> Result<i64, DbError> {
    repo::stop(tx, None, Some(contact_id), reason).await
}

/// Sends one due step of `tenant`, if any; `true` when one was handled.
pub async fn process_one(state: &AppState, tenant: &TenantId) -> Result<bool, DbError> {
    let tx = state.db.tenant(tenant).await?;
    let Some(step) = repo::claim_due_steps(&tx, 1).await?.pop() else {
        tx.commit().await?;
        return Ok(false);
    };
    let key = format!("sequence-step:{}:{}", step.enrollment_id, step.position);
    tx.execute("SAVEPOINT sequence_step", &[]).await?;
    match marketing::queue(state, &tx, step.template_id, step.contact_id, step.deal_id, step.enrolled_by, &key, None).await {
        Ok(Outcome::Queued(email)) => {
            repo::finish_step(&tx, &step, "sent", Some(email.id), None, None, None).await?;
        }
        Ok(Outcome::Skipped(reason)) => {
            tracing::info!(enrollment_id = step.enrollment_id, position = step.position, reason, "sequence step skipped");
            repo::finish_step(&tx, &step, "skipped", None, Some(reason), None, None).await?;
        }
        Err(retry) => {
            tx.execute("ROLLBACK TO SAVEPOINT sequence_step", &[]).await?;
            let next = state.settings.automation.retry_at(step.attempts + 1);
            tracing::warn!(enrollment_id = step.enrollment_id, position = step.position, error = %retry.0, retry_at = ?next, "sequence step failed");
            let status = if next.is_some() { "scheduled" } else { "failed" };
            repo::finish_step(&tx, &step, status, None, None, Some(&retry.0), next).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}
