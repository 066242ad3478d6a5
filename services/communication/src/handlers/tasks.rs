//! `/tasks`: create, list, `/tasks/mine`, read, replace, patch, delete.

use axum::extract::State;
use crm_client_communication::{NewTask, TaskDetails};
use crm_web::{ApiError, AppJson, ReplaceJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, Tagged, perm};
use utoipa::IntoParams;

use crate::AppState;
use crate::domain::TaskPatch;
use crate::service::{parse_id, tasks as service};

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

#[utoipa::path(post, path = "/api/v1/tasks", request_body = NewTask, tag = "tasks",
    responses((status = 201, description = "Created", body = TaskDetails), (status = 400), (status = 401), (status = 403), (status = 422), (status = 503)))]
pub async fn create_task(State(state): State<AppState>, can: Can<perm::TasksWrite>, AppJson(body): AppJson<NewTask>) -> Result<Tagged<TaskDetails>, ApiError> {
    let task = service::create(&state, &can, body).await?;
    Ok(Tagged::created(ETag::of(task.updated_at), task))
}

#[utoipa::path(get, path = "/api/v1/tasks", params(TaskListParams), tag = "tasks",
    responses((status = 200, description = "A page of tasks", body = Page<TaskDetails>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_tasks(State(state): State<AppState>, can: Can<perm::TasksRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<Page<TaskDetails>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

/// The caller's tasks (open ones unless `status` is given).
#[utoipa::path(get, path = "/api/v1/tasks/mine", params(TaskListParams), tag = "tasks",
    responses((status = 200, description = "A page of the caller's tasks", body = Page<TaskDetails>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_my_tasks(State(state): State<AppState>, can: Can<perm::TasksRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<AppJson<Page<TaskDetails>>, ApiError> {
    Ok(AppJson(service::mine(&state, &can, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", params(("id" = i32, Path, description = "Task id")), tag = "tasks",
    responses((status = 200, description = "The task", body = TaskDetails), (status = 401), (status = 403), (status = 404)))]
pub async fn get_task(State(state): State<AppState>, can: Can<perm::TasksRead>, AppPath(id): AppPath<String>) -> Result<Tagged<TaskDetails>, ApiError> {
    let id = parse_id(&id, "task")?;
    let task = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(task.updated_at), task))
}

#[utoipa::path(put, path = "/api/v1/tasks/{id}", params(("id" = i32, Path, description = "Task id")), request_body = NewTask, tag = "tasks",
    responses((status = 200, description = "Replaced", body = TaskDetails), (status = 400), (status = 401), (status = 403), (status = 404), (status = 422), (status = 503)))]
pub async fn replace_task(
    State(state): State<AppState>,
    can: Can<perm::TasksWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    ReplaceJson(body, _): ReplaceJson<NewTask, TaskReadOnly>,
) -> Result<Tagged<TaskDetails>, ApiError> {
    let id = parse_id(&id, "task")?;
    let task = service::replace(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(task.updated_at), task))
}

/// Changes some fields; complete or cancel a task with `{"status": "completed"}` /
/// `{"status": "cancelled"}`.
#[utoipa::path(patch, path = "/api/v1/tasks/{id}", params(("id" = i32, Path, description = "Task id")), request_body = TaskPatch, tag = "tasks",
    responses((status = 200, description = "Changed", body = TaskDetails), (status = 400), (status = 401), (status = 403), (status = 404), (status = 422), (status = 503)))]
pub async fn patch_task(
    State(state): State<AppState>,
    can: Can<perm::TasksWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    AppJson(body): AppJson<TaskPatch>,
) -> Result<Tagged<TaskDetails>, ApiError> {
    let id = parse_id(&id, "task")?;
    let task = service::patch(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(task.updated_at), task))
}

#[utoipa::path(delete, path = "/api/v1/tasks/{id}", params(("id" = i32, Path, description = "Task id")), tag = "tasks",
    responses((status = 204, description = "Deleted"), (status = 401), (status = 403), (status = 404)))]
pub async fn delete_task(
    State(state): State<AppState>,
    can: Can<perm::TasksDelete>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "task")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}

/// The fields of a task only a response carries: dropped from a PUT body, so a record read
/// with GET can be PUT back exactly as read.
pub struct TaskReadOnly;

impl crm_web::ReadOnlyFields for TaskReadOnly {
    const READ_ONLY: &'static [&'static str] = &["id", "completed_at", "is_overdue", "reminder_status", "created_at", "created_by", "updated_at"];
}
