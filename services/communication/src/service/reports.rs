//! The timelines of a contact (requirement 4.2) and of a company (issue 16), and the
//! activity report (requirement 4.5).

use chrono::{DateTime, Duration, Utc};
use crm_client_core::ClientError;
use crm_web::{ApiError, Can, FieldErrors, Page, QueryParams, Scope, parse_limit, perm};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::enrich::Refs;
use crate::repo::reports as repo;
use crate::repo::timeline::{self, TimelineCursor, TimelineItem};

/// Item types the timeline can be filtered by (`?type=call,meeting` or repeated).
pub const TIMELINE_TYPES: &[&str] = &["email", "call", "meeting", "note", "task", "reminder", "follow_up"];

/// Whose timeline: a contact's (activities, emails, tasks, notes) or a company's
/// (activities and notes; emails and tasks have no company).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineOf {
    Contact(i32),
    Company(i32),
}

/// Activities, emails (with opens and clicks), tasks and notes of a contact, newest first.
pub async fn timeline(state: &AppState, can: &Can<perm::ActivitiesRead>, contact_id: i32, params: &QueryParams) -> Result<Page<TimelineItem>, ApiError> {
    timeline_of(state, can, TimelineOf::Contact(contact_id), params).await
}

/// Activities and notes of a company, newest first (issue 16).
pub async fn company_timeline(state: &AppState, can: &Can<perm::ActivitiesRead>, company_id: i32, params: &QueryParams) -> Result<Page<TimelineItem>, ApiError> {
    timeline_of(state, can, TimelineOf::Company(company_id), params).await
}

async fn timeline_of(state: &AppState, can: &Can<perm::ActivitiesRead>, of: TimelineOf, params: &QueryParams) -> Result<Page<TimelineItem>, ApiError> {
    let mut errors = FieldErrors::new();
    let types: Vec<String> = params.list("type").into_iter().map(str::to_ascii_lowercase).collect();
    if types.iter().any(|t| !TIMELINE_TYPES.contains(&t.as_str())) {
        errors.add("type", format!("must be among: {}", TIMELINE_TYPES.join(", ")));
    }
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    super::single_sort(params, &mut errors, "-occurred_at");
    errors.into_result()?;
    let after: Option<TimelineCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;

    let rows = {
        let tx = state.db.tenant_read(&can.tenant_id).await?;
        let vis = super::email_visibility(can);
        let rows = match of {
            TimelineOf::Contact(id) => timeline::of_contact(&tx, id, &types, &vis, after.as_ref(), limit).await?,
            TimelineOf::Company(id) => timeline::of_company(&tx, id, &types, &vis, after.as_ref(), limit).await?,
        };
        tx.commit().await?;
        rows
    };
    // A record with no history must still exist (in the caller's tenant) to have a timeline.
    if rows.is_empty() && after.is_none() {
        let found = match of {
            TimelineOf::Contact(id) => state.clients.contacts.contact_basic(&can.ctx, id).await.map(|_| ()),
            TimelineOf::Company(id) => state.clients.contacts.company_basic(&can.ctx, id).await.map(|_| ()),
        };
        match found {
            Err(ClientError::NotFound) => {
                return Err(ApiError::not_found(match of {
                    TimelineOf::Contact(_) => "contact",
                    TimelineOf::Company(_) => "company",
                }));
            }
            Err(e) => tracing::warn!(error = %e, "record check of an empty timeline skipped"),
            Ok(()) => {}
        }
    }
    let page = Page::from_overfetch(rows, limit, None, |last| {
        state.cursors.encode(&TimelineCursor { at: last.occurred_at, kind: last.kind.clone(), id: last.id })
    });
    let mut data = page.data;
    let refs = Refs { users: data.iter().filter_map(|i| i.owner_id).collect(), ..Refs::default() };
    let names = state.clients.lookup(&can.ctx, &refs).await;
    for item in &mut data {
        item.owner_name = names.user(item.owner_id);
    }
    Ok(Page { data, pagination: page.pagination })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Count {
    pub key: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OwnerCount {
    pub owner_id: Option<i32>,
    /// `null` when auth-service could not be reached.
    pub owner_name: Option<String>,
    pub count: i64,
    pub completed: i64,
}

/// Open tasks: the next actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NextActions {
    pub open_tasks: i64,
    pub overdue_tasks: i64,
    pub due_next_7_days: i64,
}

/// Interaction metrics over a period: frequency (by type, by owner), outcomes, statuses and
/// the open follow-ups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActivityReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub owner_id: Option<i32>,
    pub total: i64,
    pub by_type: Vec<Count>,
    /// `key: null` counts activities without an outcome.
    pub by_outcome: Vec<Count>,
    pub by_status: Vec<Count>,
    pub by_owner: Vec<OwnerCount>,
    pub next_actions: NextActions,
}

/// The activity report over `[from, to)` (default: the last 30 days), optionally of one
/// owner; a sales rep sees only its own.
pub async fn activities(state: &AppState, can: &Can<perm::ReportsRead>, params: &QueryParams) -> Result<ActivityReport, ApiError> {
    let mut errors = FieldErrors::new();
    let to = params.time(&mut errors, "to").unwrap_or_else(Utc::now);
    let from = params.time(&mut errors, "from").unwrap_or(to - Duration::days(30));
    let mut owner = params.id(&mut errors, "owner_id");
    if from >= to {
        errors.add("from", "must be before to");
    } else if to - from > Duration::days(366 * 5) {
        errors.add("from", "the period may span at most 5 years");
    }
    errors.into_result()?;
    if can.scope == Scope::Own {
        if owner.is_some_and(|o| o != can.user_id) {
            return Err(ApiError::forbidden("a sales rep sees the report of their own activities"));
        }
        owner = Some(can.user_id);
    }
    let counts = {
        let tx = state.db.tenant_read(&can.tenant_id).await?;
        let counts = repo::activity_report(&tx, from, to, owner).await?;
        tx.commit().await?;
        counts
    };
    let refs = Refs { users: counts.by_owner.iter().filter_map(|(o, _, _)| *o).collect(), ..Refs::default() };
    let names = state.clients.lookup(&can.ctx, &refs).await;
    let count = |v: Vec<(String, i64)>| v.into_iter().map(|(k, n)| Count { key: Some(k), count: n }).collect();
    Ok(ActivityReport {
        from,
        to,
        owner_id: owner,
        total: counts.total,
        by_type: count(counts.by_type),
        by_outcome: counts.by_outcome.into_iter().map(|(k, n)| Count { key: k, count: n }).collect(),
        by_status: count(counts.by_status),
        by_owner: counts
            .by_owner
            .into_iter()
            .map(|(owner_id, count, completed)| OwnerCount { owner_id, owner_name: names.user(owner_id), count, completed })
            .collect(),
        next_actions: NextActions {
            open_tasks: counts.open_tasks,
            overdue_tasks: counts.overdue_tasks,
            due_next_7_days: counts.tasks_due_next_7_days,
        },
    })
}
