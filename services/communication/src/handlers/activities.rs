//! `/activities`: log, list (filters, keyset pages, names of contact, company, deal and
//! owner), read, replace, patch, delete. Event `activity.logged` when an activity is logged
//! and when it becomes completed.

use axum::extract::State;
use chrono::Utc;
use crm_client_communication::{ActivityDetails, NewActivity};
use crm_web::pagination::SortDir;
use crm_web::{Action, ApiError, AppJson, AppPath, AppQuery, AuthUser, Created, FieldErrors, NoContent, Page, Resource, Scope, parse_limit};
use utoipa::IntoParams;

use super::{Forward, Params, path_id, publish, sort_and_cursor, sort_key};
use crate::AppState;
use crate::domain::{ACTIVITY_STATUSES, ACTIVITY_TYPES, ActivityPatch, ActivityWrite, check_activity};
use crate::enrich::{RefFields, Refs};
use crate::repo::{self, ACTIVITY_SORTS, ActivityFilter, Cursor};

/// Query parameters of `GET /activities` (all optional).
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ActivityListParams {
    /// email, call, meeting, note, task
    #[serde(rename = "type")]
    pub r#type: Option<String>,
    /// scheduled, completed, cancelled
    pub status: Option<String>,
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub owner_id: Option<i32>,
    pub needs_review: Option<bool>,
    /// Occurred at or after (RFC 3339).
    pub from: Option<String>,
    /// Occurred before (RFC 3339).
    pub to: Option<String>,
    /// `occurred_at` (default `-occurred_at`, newest first) or `created_at`; `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

/// Checks references that changed against their services (422 when missing) and flags the
/// activity for review when a service could not be asked.
async fn verify_refs(state: &AppState, ctx: &Forward, write: &mut ActivityWrite, before: Option<&ActivityDetails>) -> Result<(), ApiError> {
    let changed = |new: Option<i32>, old: Option<i32>| new.filter(|id| before.is_none() || Some(*id) != old);
    let mut refs = Refs::default();
    refs.contacts.extend(changed(write.contact_id, before.and_then(|b| b.contact_id)));
    refs.companies.extend(changed(write.company_id, before.and_then(|b| b.company_id)));
    refs.deals.extend(changed(write.deal_id, before.and_then(|b| b.deal_id)));
    refs.users.extend(changed(write.owner_id, before.and_then(|b| b.owner_id)));
    let fields = RefFields { contact: Some("contact_id"), company: Some("company_id"), deal: Some("deal_id"), user: Some("owner_id") };
    if state.clients.verify(&ctx.0, &refs, &fields).await? {
        write.needs_review = true;
    }
    Ok(())
}

/// A sales rep logs and edits only activities it owns.
fn ensure_owner(user: &AuthUser, scope: Scope, owner_id: Option<i32>) -> Result<(), ApiError> {
    if user.can_touch(scope, owner_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden("a sales rep may only log activities as their own"))
    }
}

#[utoipa::path(post, path = "/api/v1/activities", request_body = NewActivity, tag = "activities",
    responses((status = 201, body = ActivityDetails), (status = 400), (status = 401), (status = 403), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppJson(body): AppJson<NewActivity>,
) -> Result<Created<ActivityDetails>, ApiError> {
    let scope = user.require(Resource::Activities, Action::Write)?;
    let mut errors = FieldErrors::new();
    let mut write = check_activity(&mut errors, body, user.user_id, Utc::now());
    errors.into_result()?;
    ensure_owner(&user, scope, write.owner_id)?;
    verify_refs(&state, &ctx, &mut write, None).await?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let mut activity =
        repo::insert_activity(&tx, &write, Some(user.user_id), None).await?.ok_or_else(|| ApiError::internal("insert returned no row"))?;
    publish(&tx, "activity.logged", Some(user.user_id), activity.info()).await?;
    tx.commit().await?;
    state.clients.enrich_activities(&ctx.0, std::slice::from_mut(&mut activity)).await;
    Ok(Created(activity))
}

#[utoipa::path(get, path = "/api/v1/activities", params(ActivityListParams), tag = "activities",
    responses((status = 200, body = Page<ActivityDetails>), (status = 400), (status = 401), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppQuery(params): AppQuery<Params>,
) -> Result<AppJson<Page<ActivityDetails>>, ApiError> {
    user.require(Resource::Activities, Action::Read)?;
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
    };
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|e| {
        errors.add("limit", e.details().and_then(|d| d["fields"]["limit"].as_str()).unwrap_or("invalid").to_owned());
        0
    });
    let (sort, dir, after) = sort_and_cursor(&params, &mut errors, &state.cursors, ACTIVITY_SORTS, ("occurred_at", SortDir::Desc))?;
    errors.into_result()?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let rows = repo::list_activities(&tx, &filter, sort, dir, after.as_ref(), limit).await?;
    let total = if params.count() { Some(repo::count_activities(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    let key = sort_key(sort, dir);
    let page = Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&Cursor { sort: key, at: last.at, id: last.row.id }));
    let mut data: Vec<ActivityDetails> = page.data.into_iter().map(|k| k.row).collect();
    state.clients.enrich_activities(&ctx.0, &mut data).await;
    Ok(AppJson(Page { data, pagination: page.pagination }))
}

#[utoipa::path(get, path = "/api/v1/activities/{id}", tag = "activities",
    responses((status = 200, body = ActivityDetails), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<ActivityDetails>, ApiError> {
    user.require(Resource::Activities, Action::Read)?;
    let id = path_id(&id, "activity")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let mut activity = repo::activity_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("activity"))?;
    tx.commit().await?;
    state.clients.enrich_activities(&ctx.0, std::slice::from_mut(&mut activity)).await;
    Ok(AppJson(activity))
}

/// Replaces (PUT) or patches (PATCH) an activity: `build` turns the current row into the new
/// full body.
async fn modify(
    state: AppState,
    user: AuthUser,
    ctx: Forward,
    raw_id: &str,
    build: impl FnOnce(&ActivityDetails) -> NewActivity,
) -> Result<ActivityDetails, ApiError> {
    let scope = user.require(Resource::Activities, Action::Write)?;
    let id = path_id(raw_id, "activity")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let current = repo::activity_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("activity"))?;
    if !user.can_touch_any(scope, [current.owner_id, current.created_by]) {
        return Err(ApiError::forbidden("a sales rep may only change their own activities"));
    }
    let mut errors = FieldErrors::new();
    let mut write = check_activity(&mut errors, build(&current), current.owner_id.unwrap_or(user.user_id), Utc::now());
    errors.into_result()?;
    if write.owner_id != current.owner_id {
        ensure_owner(&user, scope, write.owner_id)?;
    }
    verify_refs(&state, &ctx, &mut write, Some(&current)).await?;
    let mut activity = repo::update_activity(&tx, id, &write).await?;
    if activity.status == "completed" && current.status != "completed" {
        publish(&tx, "activity.logged", Some(user.user_id), activity.info()).await?;
    }
    tx.commit().await?;
    state.clients.enrich_activities(&ctx.0, std::slice::from_mut(&mut activity)).await;
    Ok(activity)
}

#[utoipa::path(put, path = "/api/v1/activities/{id}", request_body = NewActivity, tag = "activities",
    responses((status = 200, body = ActivityDetails), (status = 400), (status = 403), (status = 404), (status = 422)))]
pub async fn replace(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<NewActivity>,
) -> Result<AppJson<ActivityDetails>, ApiError> {
    Ok(AppJson(modify(state, user, ctx, &id, |_| body).await?))
}

#[utoipa::path(patch, path = "/api/v1/activities/{id}", request_body = ActivityPatch, tag = "activities",
    responses((status = 200, body = ActivityDetails), (status = 400), (status = 403), (status = 404), (status = 422)))]
pub async fn patch(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<ActivityPatch>,
) -> Result<AppJson<ActivityDetails>, ApiError> {
    Ok(AppJson(modify(state, user, ctx, &id, |current| body.apply(current)).await?))
}

#[utoipa::path(delete, path = "/api/v1/activities/{id}", tag = "activities",
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<NoContent, ApiError> {
    let scope = user.require(Resource::Activities, Action::Delete)?;
    let id = path_id(&id, "activity")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let current = repo::activity_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("activity"))?;
    if !user.can_touch_any(scope, [current.owner_id, current.created_by]) {
        return Err(ApiError::forbidden("a sales rep may only delete their own activities"));
    }
    repo::delete_activity(&tx, id).await?;
    tx.commit().await?;
    Ok(NoContent)
}
