//! `GET /contacts/{id}/timeline` (requirement 4.2) and `GET /reports/activities`
//! (requirement 4.5).

use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use crm_client_core::ClientError;
use crm_web::{Action, ApiError, AppJson, AppPath, AppQuery, AuthUser, FieldErrors, Page, Resource, Scope, parse_limit};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Forward, Params, path_id};
use crate::AppState;
use crate::enrich::Refs;
use crate::repo::{self, TimelineCursor, TimelineItem};

/// Item types the timeline can be filtered by (`?type=call,meeting` or repeated).
pub const TIMELINE_TYPES: &[&str] = &["email", "call", "meeting", "note", "task", "reminder", "follow_up"];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TimelineParams {
    /// Comma-separated or repeated: email, call, meeting, note, task, reminder, follow_up.
    #[serde(rename = "type")]
    pub r#type: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Activities, emails (with opens and clicks) and tasks of a contact, newest first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/timeline", params(TimelineParams), tag = "timeline",
    responses((status = 200, body = Page<TimelineItem>), (status = 400), (status = 403), (status = 404)))]
pub async fn timeline(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<Params>,
) -> Result<AppJson<Page<TimelineItem>>, ApiError> {
    user.require(Resource::Activities, Action::Read)?;
    let contact_id = path_id(&id, "contact")?;
    let mut errors = FieldErrors::new();
    let types: Vec<String> = params.list("type").into_iter().map(str::to_ascii_lowercase).collect();
    if types.iter().any(|t| !TIMELINE_TYPES.contains(&t.as_str())) {
        errors.add("type", format!("must be among: {}", TIMELINE_TYPES.join(", ")));
    }
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    errors.into_result()?;
    let after: Option<TimelineCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let rows = repo::timeline(&tx, contact_id, &types, after.as_ref(), limit).await?;
    tx.commit().await?;
    drop(conn);
    // A contact with no history must still exist (in the caller's tenant) to have a timeline.
    if rows.is_empty() && after.is_none() {
        match state.clients.contacts.contact_basic(&ctx.0, contact_id).await {
            Err(ClientError::NotFound) => return Err(ApiError::not_found("contact")),
            Err(e) => tracing::warn!(error = %e, "contact check of an empty timeline skipped"),
            Ok(_) => {}
        }
    }
    let page = Page::from_overfetch(rows, limit, None, |last| {
        state.cursors.encode(&TimelineCursor { at: last.occurred_at, kind: last.kind.clone(), id: last.id })
    });
    let mut data = page.data;
    let refs = Refs { users: data.iter().filter_map(|i| i.owner_id).collect(), ..Refs::default() };
    let names = state.clients.lookup(&ctx.0, &refs).await;
    for item in &mut data {
        item.owner_name = names.user(item.owner_id);
    }
    Ok(AppJson(Page { data, pagination: page.pagination }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReportParams {
    /// Start (inclusive, RFC 3339); default 30 days before `to`.
    pub from: Option<String>,
    /// End (exclusive, RFC 3339); default now.
    pub to: Option<String>,
    /// Only this owner's activities and tasks (sales reps: always their own).
    pub owner_id: Option<i32>,
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

#[utoipa::path(get, path = "/api/v1/reports/activities", params(ReportParams), tag = "reports",
    responses((status = 200, body = ActivityReport), (status = 400), (status = 403)))]
pub async fn activities(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppQuery(params): AppQuery<Params>,
) -> Result<AppJson<ActivityReport>, ApiError> {
    let scope = user.require(Resource::Reports, Action::Read)?;
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
    if scope == Scope::Own {
        if owner.is_some_and(|o| o != user.user_id) {
            return Err(ApiError::forbidden("a sales rep sees the report of their own activities"));
        }
        owner = Some(user.user_id);
    }
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let counts = repo::activity_report(&tx, from, to, owner).await?;
    tx.commit().await?;
    drop(conn);
    let refs = Refs { users: counts.by_owner.iter().filter_map(|(o, _, _)| *o).collect(), ..Refs::default() };
    let names = state.clients.lookup(&ctx.0, &refs).await;
    let count = |v: Vec<(String, i64)>| v.into_iter().map(|(k, n)| Count { key: Some(k), count: n }).collect();
    Ok(AppJson(ActivityReport {
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
    }))
}
