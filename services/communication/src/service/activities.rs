//! Activities: log, list (filters, keyset pages, names of contact, company, deal and
//! owner), read, replace, patch, delete; and the activity (plus follow-up task) of a won
//! deal. Event `activity.logged` when an activity is logged and when it becomes completed.

use chrono::Utc;
use crm_client_communication::subjects::ACTIVITY_LOGGED;
use crm_client_communication::{ActivityDetails, CustomFields, NewActivity};
use crm_client_deal::DealClosedEvent;
use crm_client_deal::subjects::DEAL_CLOSED_WON;
use crm_events::{Envelope, HandlerError, publish};
use crm_tenant::TenantTx;
use crm_web::pagination::SortDir;
use crm_web::{ApiError, Can, Caller, ETag, FieldErrors, IfMatch, Page, QueryParams, parse_limit, perm};

use super::references::{refuse_gone, without_gone};
use super::{email_visibility, no_row, sort_and_cursor, sort_key};
use crate::AppState;
use crate::domain::{ACTIVITY_STATUSES, ACTIVITY_TYPES, ActivityPatch, ActivityWrite, TaskWrite, check_activity};
use crate::enrich::{RefFields, Refs};
use crate::repo::activities::{self as repo, ACTIVITY_SORTS, ActivityFilter};
use crate::repo::{Cursor, tasks as task_repo};

/// Checks references that changed against their services (422 when missing) and flags the
/// activity for review when a service could not be asked.
async fn verify_refs(state: &AppState, caller: &Caller, write: &mut ActivityWrite, before: Option<&ActivityDetails>) -> Result<(), ApiError> {
    let changed = |new: Option<i32>, old: Option<i32>| new.filter(|id| before.is_none() || Some(*id) != old);
    let mut refs = Refs::default();
    refs.contacts.extend(changed(write.contact_id, before.and_then(|b| b.contact_id)));
    refs.companies.extend(changed(write.company_id, before.and_then(|b| b.company_id)));
    refs.deals.extend(changed(write.deal_id, before.and_then(|b| b.deal_id)));
    refs.users.extend(changed(write.owner_id, before.and_then(|b| b.owner_id)));
    let fields = RefFields { contact: Some("contact_id"), company: Some("company_id"), deal: Some("deal_id"), user: Some("owner_id") };
    if state.clients.verify(&caller.ctx, &refs, &fields).await? {
        write.needs_review = true;
    }
    Ok(())
}

/// A sales rep logs and edits only activities it owns.
fn ensure_owner(can: &Can<perm::ActivitiesWrite>, owner_id: Option<i32>) -> Result<(), ApiError> {
    if can.reaches([owner_id]) { Ok(()) } else { Err(ApiError::forbidden("a sales rep may only log activities as their own")) }
}

pub async fn create(state: &AppState, can: &Can<perm::ActivitiesWrite>, input: NewActivity) -> Result<ActivityDetails, ApiError> {
    let mut errors = FieldErrors::new();
    let mut write = check_activity(&mut errors, input, can.user_id, Utc::now());
    errors.into_result()?;
    ensure_owner(can, write.owner_id)?;
    verify_refs(state, can, &mut write, None).await?;

    let tx = state.db.tenant(&can.tenant_id).await?;
    refuse_gone(&tx, write.contact_id, write.company_id, write.deal_id).await?;
    let mut activity = repo::insert(&tx, &write, Some(can.user_id), None).await?.ok_or_else(no_row)?;
    publish(&tx, Some(can.user_id), ACTIVITY_LOGGED, activity.info()).await?;
    tx.commit().await?;
    state.clients.enrich_activities(&can.ctx, std::slice::from_mut(&mut activity)).await;
    Ok(activity)
}

pub async fn list(state: &AppState, can: &Can<perm::ActivitiesRead>, params: &QueryParams) -> Result<Page<ActivityDetails>, ApiError> {
    let mut errors = FieldErrors::new();
    let filter = ActivityFilter {
        r#type: params.choice(&mut errors, "type", ACTIVITY_TYPES),
        status: params.choice(&mut errors, "status", ACTIVITY_STATUSES),
        contact_id: params.id(&mut errors, "contact_id"),
        company_id: params.id(&mut errors, "company_id"),
        deal_id: params.id(&mut errors, "deal_id"),
        owner_id: params.id(&mut errors, "owner_id"),
        needs_review: params.flag(&mut errors, "needs_review"),
        from: params.time(&mut errors, "from"),
        to: params.time(&mut errors, "to"),
        visibility: email_visibility(can),
    };
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|e| {
        errors.add("limit", e.details().and_then(|d| d["fields"]["limit"].as_str()).unwrap_or("invalid").to_owned());
        0
    });
    let (sort, dir, after) = sort_and_cursor(params, &mut errors, &state.cursors, ACTIVITY_SORTS, ("occurred_at", SortDir::Desc))?;
    errors.into_result()?;

    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = repo::list(&tx, &filter, sort, dir, after.as_ref(), limit).await?;
    let total = if params.count() { Some(repo::count(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    let key = sort_key(sort, dir);
    let page = Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&Cursor { sort: key, at: last.at, id: last.row.id }));
    let mut data: Vec<ActivityDetails> = page.data.into_iter().map(|k| k.row).collect();
    state.clients.enrich_activities(&can.ctx, &mut data).await;
    Ok(Page { data, pagination: page.pagination })
}

pub async fn get(state: &AppState, can: &Can<perm::ActivitiesRead>, id: i32) -> Result<ActivityDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let mut activity = repo::by_id(&tx, id, &email_visibility(can)).await?.ok_or_else(|| ApiError::not_found("activity"))?;
    tx.commit().await?;
    state.clients.enrich_activities(&can.ctx, std::slice::from_mut(&mut activity)).await;
    Ok(activity)
}

/// PUT: the body replaces the activity.
pub async fn replace(state: &AppState, can: &Can<perm::ActivitiesWrite>, id: i32, if_match: &IfMatch, input: NewActivity) -> Result<ActivityDetails, ApiError> {
    modify(state, can, id, if_match, |_| input).await
}

/// PATCH: only the fields present change.
pub async fn patch(state: &AppState, can: &Can<perm::ActivitiesWrite>, id: i32, if_match: &IfMatch, patch: ActivityPatch) -> Result<ActivityDetails, ApiError> {
    modify(state, can, id, if_match, |current| patch.apply(current)).await
}

/// Replaces or patches an activity: `build` turns the current row into the new full body.
async fn modify(
    state: &AppState,
    can: &Can<perm::ActivitiesWrite>,
    id: i32,
    if_match: &IfMatch,
    build: impl FnOnce(&ActivityDetails) -> NewActivity,
) -> Result<ActivityDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id, &email_visibility(can)).await?.ok_or_else(|| ApiError::not_found("activity"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    if !can.reaches([current.owner_id, current.created_by]) {
        return Err(ApiError::forbidden("a sales rep may only change their own activities"));
    }
    let mut errors = FieldErrors::new();
    let mut write = check_activity(&mut errors, build(&current), current.owner_id.unwrap_or(can.user_id), Utc::now());
    errors.into_result()?;
    if write.owner_id != current.owner_id {
        ensure_owner(can, write.owner_id)?;
    }
    verify_refs(state, can, &mut write, Some(&current)).await?;
    refuse_gone(&tx, write.contact_id, write.company_id, write.deal_id).await?;
    let mut activity = repo::update(&tx, id, &write).await?;
    if activity.status == "completed" && current.status != "completed" {
        publish(&tx, Some(can.user_id), ACTIVITY_LOGGED, activity.info()).await?;
    }
    tx.commit().await?;
    state.clients.enrich_activities(&can.ctx, std::slice::from_mut(&mut activity)).await;
    Ok(activity)
}

pub async fn delete(state: &AppState, can: &Can<perm::ActivitiesDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id, &email_visibility(can)).await?.ok_or_else(|| ApiError::not_found("activity"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    if !can.reaches([current.owner_id, current.created_by]) {
        return Err(ApiError::forbidden("a sales rep may only delete their own activities"));
    }
    repo::delete(&tx, id).await?;
    // Its files go too unless they are also about a contact, company or deal (issue 16; the
    // objects are removed by the attachment removal loop).
    crate::repo::attachments::drop_record(&tx, "activity_id", id).await?;
    tx.commit().await?;
    Ok(())
}

/// `deal.closed_won`: the activity "Deal closed won: <title>" on the deal, its primary
/// contact and company (`activity.logged`), and a follow-up task for the owner (the actor
/// when the deal has none), due `follow_up_days` later. Both rows carry the event id, so a
/// redelivered event adds nothing.
pub async fn record_deal_won(tx: &TenantTx, follow_up_days: i64, event: &Envelope, deal: &DealClosedEvent) -> Result<(), HandlerError> {
    let owner = deal.owner_id.or_else(|| event.actor.as_deref().and_then(|a| a.parse().ok()));
    // Records deleted before this event was applied are not referenced again.
    let (contact_id, company_id, deal_id) = without_gone(tx, deal.primary_contact_id, deal.company_id, Some(deal.deal.id)).await?;
    let value = if deal.deal.value > 0.0 { format!(" (value {:.2})", deal.deal.value) } else { String::new() };
    let mut custom_fields = CustomFields::new();
    custom_fields.insert("event".into(), DEAL_CLOSED_WON.into());
    custom_fields.insert("deal_value".into(), deal.deal.value.into());
    let activity = ActivityWrite {
        r#type: "note".into(),
        subject: format!("Deal closed won: {}", deal.deal.title).chars().take(255).collect(),
        description: Some(format!("{} closed won on {}{value}.", deal.deal.title, deal.actual_close_date)),
        status: "completed".into(),
        direction: None,
        outcome: Some("won".into()),
        duration_minutes: None,
        scheduled_at: None,
        completed_at: Some(event.timestamp),
        contact_id,
        company_id,
        deal_id,
        owner_id: owner,
        custom_fields,
        needs_review: false,
    };
    if let Some(logged) = repo::insert(tx, &activity, None, Some(&event.id)).await? {
        publish(tx, None, ACTIVITY_LOGGED, logged.info()).await?;
    }
    let Some(assignee) = owner else {
        tracing::info!(event_id = event.id, deal_id = deal.deal.id, "won deal without owner: no follow-up task");
        return Ok(());
    };
    let due = event.timestamp + chrono::Duration::days(follow_up_days);
    let task = TaskWrite {
        title: format!("Follow up on won deal: {}", deal.deal.title).chars().take(255).collect(),
        description: Some("The deal was won: thank the customer and plan onboarding and next steps.".into()),
        r#type: "follow_up".into(),
        status: "pending".into(),
        priority: "high".into(),
        due_date: Some(due),
        reminder_at: Some(due - chrono::Duration::hours(2)),
        assigned_to: assignee,
        contact_id,
        deal_id,
        completed_at: None,
        custom_fields: Default::default(),
    };
    task_repo::insert(tx, &task, None, Some(&event.id)).await?;
    Ok(())
}
