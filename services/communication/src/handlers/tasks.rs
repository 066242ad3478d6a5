//! `/tasks`: create, list (filters incl. `overdue`, `due_before`, `due_soon` for reminders),
//! `/tasks/mine`, read, replace, patch (complete/cancel with `{"status": ...}`), delete.

use axum::extract::State;
use chrono::{Duration, Utc};
use crm_client_communication::{NewTask, TaskDetails};
use crm_web::pagination::SortDir;
use crm_web::{Action, ApiError, AppJson, AppPath, AppQuery, AuthUser, Created, FieldErrors, NoContent, Page, Resource, parse_limit};
use utoipa::IntoParams;

use super::{Forward, Params, path_id, sort_and_cursor, sort_key};
use crate::AppState;
use crate::domain::{PRIORITIES, TASK_STATUSES, TASK_TYPES, TaskPatch, TaskWrite, check_task};
use crate::enrich::{RefFields, Refs};
use crate::repo::{self, Cursor, TASK_SORTS, TaskFilter};

/// How far ahead `?due_soon=true` looks by default (`due_soon_minutes` changes it).
pub const DUE_SOON_MINUTES: i64 = 15;

/// Query parameters of `GET /tasks` and `GET /tasks/mine` (all optional).
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TaskListParams {
    /// pending, in_progress, completed, cancelled (`/tasks/mine`: open ones unless given)
    pub status: Option<String>,
    /// low, normal, high, urgent
    pub priority: Option<String>,
    /// task, reminder, follow_up
    #[serde(rename = "type")]
    pub r#type: Option<String>,
    pub assigned_to: Option<i32>,
    pub contact_id: Option<i32>,
    pub deal_id: Option<i32>,
    /// Due strictly before this time (RFC 3339).
    pub due_before: Option<String>,
    /// Open and past due.
    pub overdue: Option<bool>,
    /// Open, with a reminder or due date within `due_soon_minutes` (default 15) from now, or
    /// already past: what to remind the assignee of.
    pub due_soon: Option<bool>,
    pub due_soon_minutes: Option<i64>,
    /// `due_date` (default; tasks without a due date last) or `created_at`; `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

async fn verify_refs(state: &AppState, ctx: &Forward, write: &TaskWrite, before: Option<&TaskDetails>) -> Result<(), ApiError> {
    let mut refs = Refs::default();
    let old = before.map(|b| &b.task);
    if old.is_none_or(|o| o.assigned_to != write.assigned_to) {
        refs.users.insert(write.assigned_to);
    }
    refs.contacts.extend(write.contact_id.filter(|id| old.is_none_or(|o| o.contact_id != Some(*id))));
    refs.deals.extend(write.deal_id.filter(|id| old.is_none_or(|o| o.deal_id != Some(*id))));
    let fields = RefFields { contact: Some("contact_id"), deal: Some("deal_id"), user: Some("assigned_to"), company: None };
    // Tasks have no review flag: an unverifiable reference is accepted as given.
    state.clients.verify(&ctx.0, &refs, &fields).await.map(|_| ())
}

#[utoipa::path(post, path = "/api/v1/tasks", request_body = NewTask, tag = "tasks",
    responses((status = 201, body = TaskDetails), (status = 400), (status = 401), (status = 403), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppJson(body): AppJson<NewTask>,
) -> Result<Created<TaskDetails>, ApiError> {
    user.require(Resource::Tasks, Action::Write)?;
    let mut errors = FieldErrors::new();
    let write = check_task(&mut errors, body, user.user_id, None, Utc::now());
    errors.into_result()?;
    verify_refs(&state, &ctx, &write, None).await?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let task = repo::insert_task(&tx, &write, Some(user.user_id), None).await?.ok_or_else(|| ApiError::internal("insert returned no row"))?;
    tx.commit().await?;
    Ok(Created(task))
}

async fn list_with(state: AppState, user: AuthUser, params: Params, mine: bool) -> Result<AppJson<Page<TaskDetails>>, ApiError> {
    user.require(Resource::Tasks, Action::Read)?;
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
    let assigned_to = if mine { Some(user.user_id) } else { params.id(&mut errors, "assigned_to") };
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
    let (sort, dir, after) = sort_and_cursor(&params, &mut errors, &state.cursors, TASK_SORTS, ("due_date", SortDir::Asc))?;
    errors.into_result()?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let rows = repo::list_tasks(&tx, &filter, sort, dir, after.as_ref(), limit).await?;
    let total = if params.count() { Some(repo::count_tasks(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    let key = sort_key(sort, dir);
    let page = Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&Cursor { sort: key, at: last.at, id: last.row.task.id }));
    Ok(AppJson(Page { data: page.data.into_iter().map(|k| k.row).collect(), pagination: page.pagination }))
}

#[utoipa::path(get, path = "/api/v1/tasks", params(TaskListParams), tag = "tasks",
    responses((status = 200, body = Page<TaskDetails>), (status = 400), (status = 401), (status = 403)))]
pub async fn list(State(state): State<AppState>, user: AuthUser, AppQuery(params): AppQuery<Params>) -> Result<AppJson<Page<TaskDetails>>, ApiError> {
    list_with(state, user, params, false).await
}

/// The caller's tasks (open ones unless `status` is given).
#[utoipa::path(get, path = "/api/v1/tasks/mine", params(TaskListParams), tag = "tasks",
    responses((status = 200, body = Page<TaskDetails>), (status = 400), (status = 401), (status = 403)))]
pub async fn mine(State(state): State<AppState>, user: AuthUser, AppQuery(params): AppQuery<Params>) -> Result<AppJson<Page<TaskDetails>>, ApiError> {
    list_with(state, user, params, true).await
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks",
    responses((status = 200, body = TaskDetails), (status = 401), (status = 403), (status = 404)))]
pub async fn get(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<AppJson<TaskDetails>, ApiError> {
    user.require(Resource::Tasks, Action::Read)?;
    let id = path_id(&id, "task")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let task = repo::task_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("task"))?;
    tx.commit().await?;
    Ok(AppJson(task))
}

async fn modify(
    state: AppState,
    user: AuthUser,
    ctx: Forward,
    raw_id: &str,
    build: impl FnOnce(&TaskDetails) -> NewTask,
) -> Result<TaskDetails, ApiError> {
    let scope = user.require(Resource::Tasks, Action::Write)?;
    let id = path_id(raw_id, "task")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let current = repo::task_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("task"))?;
    if !user.can_touch_any(scope, [Some(current.task.assigned_to), current.created_by]) {
        return Err(ApiError::forbidden("a sales rep may only change tasks assigned to or created by them"));
    }
    let mut errors = FieldErrors::new();
    let write = check_task(&mut errors, build(&current), current.task.assigned_to, current.completed_at, Utc::now());
    errors.into_result()?;
    verify_refs(&state, &ctx, &write, Some(&current)).await?;
    let task = repo::update_task(&tx, id, &write).await?;
    tx.commit().await?;
    Ok(task)
}

#[utoipa::path(put, path = "/api/v1/tasks/{id}", request_body = NewTask, tag = "tasks",
    responses((status = 200, body = TaskDetails), (status = 400), (status = 403), (status = 404), (status = 422)))]
pub async fn replace(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<NewTask>,
) -> Result<AppJson<TaskDetails>, ApiError> {
    Ok(AppJson(modify(state, user, ctx, &id, |_| body).await?))
}

#[utoipa::path(patch, path = "/api/v1/tasks/{id}", request_body = TaskPatch, tag = "tasks",
    responses((status = 200, body = TaskDetails), (status = 400), (status = 403), (status = 404), (status = 422)))]
pub async fn patch(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<TaskPatch>,
) -> Result<AppJson<TaskDetails>, ApiError> {
    Ok(AppJson(modify(state, user, ctx, &id, |current| body.apply(current)).await?))
}

#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "tasks",
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<NoContent, ApiError> {
    let scope = user.require(Resource::Tasks, Action::Delete)?;
    let id = path_id(&id, "task")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let current = repo::task_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("task"))?;
    if !user.can_touch_any(scope, [Some(current.task.assigned_to), current.created_by]) {
        return Err(ApiError::forbidden("a sales rep may only delete tasks assigned to or created by them"));
    }
    repo::delete_task(&tx, id).await?;
    tx.commit().await?;
    Ok(NoContent)
}
