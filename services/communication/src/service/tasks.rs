//! Tasks: create, list (filters incl. `overdue`, `due_before`, `due_soon` for reminders),
//! the caller's own (`/tasks/mine`), read, replace, patch (complete or cancel with
//! `{"status": ...}`), delete.

use chrono::{Duration, Utc};
use crm_client_communication::{NewTask, TaskDetails};
use crm_web::pagination::SortDir;
use crm_web::{ApiError, Can, Caller, ETag, FieldErrors, IfMatch, Page, QueryParams, parse_limit, perm};

use super::references::refuse_gone;
use super::{no_row, sort_and_cursor, sort_key};
use crate::AppState;
use crate::domain::{PRIORITIES, TASK_STATUSES, TASK_TYPES, TaskPatch, TaskWrite, check_task};
use crate::enrich::{RefFields, Refs};
use crate::repo::Cursor;
use crate::repo::tasks::{self as repo, TASK_SORTS, TaskFilter};

/// How far ahead `?due_soon=true` looks by default (`due_soon_minutes` changes it).
pub const DUE_SOON_MINUTES: i64 = 15;

async fn verify_refs(state: &AppState, caller: &Caller, write: &TaskWrite, before: Option<&TaskDetails>) -> Result<(), ApiError> {
    let mut refs = Refs::default();
    let old = before.map(|b| &b.task);
    if old.is_none_or(|o| o.assigned_to != write.assigned_to) {
        refs.users.insert(write.assigned_to);
    }
    refs.contacts.extend(write.contact_id.filter(|id| old.is_none_or(|o| o.contact_id != Some(*id))));
    refs.deals.extend(write.deal_id.filter(|id| old.is_none_or(|o| o.deal_id != Some(*id))));
    let fields = RefFields { contact: Some("contact_id"), deal: Some("deal_id"), user: Some("assigned_to"), company: None };
    // Tasks have no review flag: an unverifiable reference is accepted as given.
    state.clients.verify(&caller.ctx, &refs, &fields).await.map(|_| ())
}

pub async fn create(state: &AppState, can: &Can<perm::TasksWrite>, input: NewTask) -> Result<TaskDetails, ApiError> {
    let mut errors = FieldErrors::new();
    let write = check_task(&mut errors, input, can.user_id, None, Utc::now());
    errors.into_result()?;
    verify_refs(state, can, &write, None).await?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    refuse_gone(&tx, write.contact_id, None, write.deal_id).await?;
    let task = repo::insert(&tx, &write, Some(can.user_id), None).await?.ok_or_else(no_row)?;
    tx.commit().await?;
    Ok(task)
}

/// `GET /tasks`.
pub async fn list(state: &AppState, can: &Can<perm::TasksRead>, params: &QueryParams) -> Result<Page<TaskDetails>, ApiError> {
    list_with(state, can, params, false).await
}

/// `GET /tasks/mine`: the caller's tasks (open ones unless `status` is given).
pub async fn mine(state: &AppState, can: &Can<perm::TasksRead>, params: &QueryParams) -> Result<Page<TaskDetails>, ApiError> {
    list_with(state, can, params, true).await
}

async fn list_with(state: &AppState, can: &Can<perm::TasksRead>, params: &QueryParams, mine: bool) -> Result<Page<TaskDetails>, ApiError> {
    let mut errors = FieldErrors::new();
    let now = Utc::now();
    let status = params.choice(&mut errors, "status", TASK_STATUSES);
    let due_soon_minutes = match params.one("due_soon_minutes") {
        None => DUE_SOON_MINUTES,
        Some(raw) => raw.trim().parse::<i64>().ok().filter(|m| (0..=60 * 24 * 365).contains(m)).unwrap_or_else(|| {
            errors.add("due_soon_minutes", "must be a number of minutes between 0 and 525600");
            DUE_SOON_MINUTES
        }),
    };
    let assigned_to = if mine { Some(can.user_id) } else { params.id(&mut errors, "assigned_to") };
    let filter = TaskFilter {
        open: mine && status.is_none(),
        status,
        priority: params.choice(&mut errors, "priority", PRIORITIES),
        r#type: params.choice(&mut errors, "type", TASK_TYPES),
        assigned_to,
        contact_id: params.id(&mut errors, "contact_id"),
        deal_id: params.id(&mut errors, "deal_id"),
        due_before: params.time(&mut errors, "due_before"),
        overdue: params.flag(&mut errors, "overdue").unwrap_or(false),
        due_soon_before: params.flag(&mut errors, "due_soon").unwrap_or(false).then(|| now + Duration::minutes(due_soon_minutes)),
    };
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    let (sort, dir, after) = sort_and_cursor(params, &mut errors, &state.cursors, TASK_SORTS, ("due_date", SortDir::Asc))?;
    errors.into_result()?;

    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = repo::list(&tx, &filter, sort, dir, after.as_ref(), limit).await?;
    let total = if params.count() { Some(repo::count(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    let key = sort_key(sort, dir);
    let page = Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&Cursor { sort: key, at: last.at, id: last.row.task.id }));
    Ok(Page { data: page.data.into_iter().map(|k| k.row).collect(), pagination: page.pagination })
}

pub async fn get(state: &AppState, can: &Can<perm::TasksRead>, id: i32) -> Result<TaskDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let task = repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("task"))?;
    tx.commit().await?;
    Ok(task)
}

/// PUT: the body replaces the task.
pub async fn replace(state: &AppState, can: &Can<perm::TasksWrite>, id: i32, if_match: &IfMatch, input: NewTask) -> Result<TaskDetails, ApiError> {
    modify(state, can, id, if_match, |_| input).await
}

/// PATCH: only the fields present change.
pub async fn patch(state: &AppState, can: &Can<perm::TasksWrite>, id: i32, if_match: &IfMatch, patch: TaskPatch) -> Result<TaskDetails, ApiError> {
    modify(state, can, id, if_match, |current| patch.apply(current)).await
}

async fn modify(
    state: &AppState,
    can: &Can<perm::TasksWrite>,
    id: i32,
    if_match: &IfMatch,
    build: impl FnOnce(&TaskDetails) -> NewTask,
) -> Result<TaskDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("task"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    if !can.reaches([Some(current.task.assigned_to), current.created_by]) {
        return Err(ApiError::forbidden("a sales rep may only change tasks assigned to or created by them"));
    }
    let mut errors = FieldErrors::new();
    let write = check_task(&mut errors, build(&current), current.task.assigned_to, current.completed_at, Utc::now());
    errors.into_result()?;
    verify_refs(state, can, &write, Some(&current)).await?;
    refuse_gone(&tx, write.contact_id, None, write.deal_id).await?;
    let task = repo::update(&tx, id, &write).await?;
    tx.commit().await?;
    Ok(task)
}

pub async fn delete(state: &AppState, can: &Can<perm::TasksDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("task"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    if !can.reaches([Some(current.task.assigned_to), current.created_by]) {
        return Err(ApiError::forbidden("a sales rep may only delete tasks assigned to or created by them"));
    }
    repo::delete(&tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Payload of `contact.became_inactive` (contact-service's daily job, issue 15): a lead or
/// prospect without contact for the tenant's `inactive_lead_days`.
#[derive(Debug, serde::Deserialize)]
pub struct BecameInactive {
    pub contact_id: i32,
    pub owner_id: Option<i32>,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub inactive_days: Option<i64>,
    #[serde(default)]
    pub last_contacted_at: Option<chrono::DateTime<Utc>>,
}

/// `contact.became_inactive`: a follow-up task for the contact's owner (seed 002 req. 5.3),
/// due a day later, at most ONE open per contact (a unique partial index; a second event
/// while one is open adds nothing). A contact without owner or deleted since gets none.
pub async fn follow_up_inactive(tx: &crm_tenant::TenantTx, event: &crm_events::Envelope, lead: &BecameInactive) -> Result<(), crm_events::HandlerError> {
    let Some(owner) = lead.owner_id else {
        tracing::info!(contact_id = lead.contact_id, "inactive lead without owner: no follow-up task");
        return Ok(());
    };
    let (contact_id, _, _) = super::references::without_gone(tx, Some(lead.contact_id), None, None).await?;
    let Some(contact_id) = contact_id else { return Ok(()) };
    let name = format!("{} {}", lead.first_name, lead.last_name).trim().to_owned();
    let name = if name.is_empty() { format!("contact {contact_id}") } else { name };
    let since = match (lead.inactive_days, lead.last_contacted_at) {
        (Some(days), Some(at)) => format!("No contact for {days} days (last on {}).", at.format("%Y-%m-%d")),
        (Some(days), None) => format!("No contact for {days} days (never contacted)."),
        _ => "No recent contact.".to_owned(),
    };
    let mut custom_fields = crm_client_communication::CustomFields::new();
    custom_fields.insert("reason".into(), "inactive_lead".into());
    if let Some(days) = lead.inactive_days {
        custom_fields.insert("inactive_days".into(), days.into());
    }
    let task = TaskWrite {
        title: format!("Follow up with {name}").chars().take(255).collect(),
        description: Some(format!("{since} Reach out to keep the lead warm.")),
        r#type: "follow_up".into(),
        status: "pending".into(),
        priority: "normal".into(),
        due_date: Some(event.timestamp + Duration::days(1)),
        reminder_at: None,
        assigned_to: owner,
        contact_id: Some(contact_id),
        deal_id: None,
        completed_at: None,
        custom_fields,
    };
    if repo::insert_unless_open(tx, &task, &event.id).await?.is_none() {
        tracing::debug!(contact_id, "an inactive-lead follow-up is open already (or this event was applied)");
    }
    Ok(())
}
