//! The use cases of deal-service. Each runs in one tenant-scoped transaction: check the
//! caller's permission, read, apply the rules, write, enqueue the events, commit; names are
//! looked up after the commit (no remote call holds a row lock).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{Datelike, Utc};
use crm_client_core::CallContext;
use crm_client_deal::{
    DealBasicInfo, DealClosedEvent, DealContactInfo, DealResponse, DealStageChangedEvent, ForecastPeriod, ForecastResponse,
    ForecastTotals, PipelineStage, PipelineStageInfo, PipelineTotals, PipelineViewResponse, StageKind, Unscheduled,
};
use crm_events::{Envelope, enqueue};
use crm_tenant::TenantTx;
use crm_web::pagination::{SortDir, parse_cursor, parse_sort};
use crm_web::{Action, ApiError, AuthState, AuthUser, Page, Resource, Scope, codes, parse_limit};
use serde::Serialize;
use serde_json::json;

use crate::AppState;
use crate::domain::{CurrentStage, Money, Stages, apply_stage_rules};
use crate::input::{DealChanges, DealListParams, Forecast, PipelineParams, StageConfigInput, movable};
use crate::lookup::{Refs, Wanted};
use crate::repo::{self, DealCursor, DealFields, DealRow, SortKey};

/// The authenticated caller and what is forwarded on its behalf to other services (its
/// bearer token and the request id).
pub struct Caller {
    pub user: AuthUser,
    pub ctx: CallContext,
}

impl<S> FromRequestParts<S> for Caller
where
    AuthState: axum::extract::FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let bearer = crm_web::auth::bearer_token(&parts.headers)?.map(str::to_owned);
        Ok(Self { user, ctx: CallContext { bearer, request_id: crm_web::request_id::current() } })
    }
}

/// Ids that cannot exist are simply not found.
pub fn parse_deal_id(raw: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::not_found("deal"))
}

async fn publish(tx: &TenantTx<'_>, user: &AuthUser, event_type: &str, data: impl Serialize) -> Result<(), ApiError> {
    let event = Envelope::new(event_type, &user.tenant_id, Some(user.user_id.to_string()), data).map_err(ApiError::internal)?;
    enqueue(tx, &event).await?;
    Ok(())
}

fn basic(row: &DealRow) -> DealBasicInfo {
    DealBasicInfo {
        id: row.id,
        title: row.fields.title.clone(),
        stage: row.fields.stage.clone(),
        value: row.fields.value.map_or(0.0, Money::as_f64),
    }
}

async fn publish_closed(tx: &TenantTx<'_>, user: &AuthUser, kind: StageKind, row: &DealRow) -> Result<(), ApiError> {
    let event_type = if kind == StageKind::Won { "deal.closed_won" } else { "deal.closed_lost" };
    let data = DealClosedEvent {
        deal: basic(row),
        owner_id: row.fields.owner_id,
        company_id: row.fields.company_id,
        primary_contact_id: row.fields.primary_contact_id,
        actual_close_date: row.fields.actual_close_date.unwrap_or_else(|| Utc::now().date_naive()),
        close_reason: row.fields.close_reason.clone(),
    };
    publish(tx, user, event_type, data).await
}

fn own_only(message: &str) -> ApiError {
    ApiError::forbidden(format!("role sales_rep may only {message} deals it owns"))
}

/// The non-stage fields of `base` with `ch` applied.
fn merge(mut f: DealFields, ch: &DealChanges) -> DealFields {
    if let Some(v) = &ch.title {
        f.title = v.clone();
    }
    if let Some(v) = &ch.description {
        f.description = v.clone();
    }
    if let Some(v) = ch.value {
        f.value = v;
    }
    if let Some(v) = &ch.currency {
        f.currency = v.clone();
    }
    if let Some(v) = ch.primary_contact_id {
        f.primary_contact_id = v;
    }
    if let Some(v) = ch.company_id {
        f.company_id = v;
    }
    if let Some(v) = ch.owner_id {
        f.owner_id = v;
    }
    if let Some(v) = ch.expected_close_date {
        f.expected_close_date = v;
    }
    if let Some(v) = &ch.source {
        f.source = v.clone();
    }
    if let Some(v) = &ch.custom_fields {
        f.custom_fields = v.clone();
    }
    f
}

/// References a write sets (each is checked with its owning service).
fn refs_of(ch: &DealChanges) -> Refs {
    Refs { company: ch.company_id.flatten(), contact: ch.primary_contact_id.flatten(), owner: ch.owner_id.flatten() }
}

pub async fn create_deal(state: &AppState, caller: &Caller, mut ch: DealChanges) -> Result<DealResponse, ApiError> {
    let user = &caller.user;
    let scope = user.require(Resource::Deals, Action::Write)?;
    let owner = *ch.owner_id.get_or_insert(Some(user.user_id));
    if scope == Scope::Own && owner != Some(user.user_id) {
        return Err(own_only("create"));
    }
    state.lookups.check_refs(&caller.ctx, refs_of(&ch), user.user_id).await?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let stages = Stages(repo::list_stages(&tx).await?);
    let target = match &ch.stage {
        Some(key) => stages.require(key)?,
        None => stages.initial()?,
    };
    let outcome = apply_stage_rules(None, target, std::mem::take(&mut ch.stage_input), Utc::now().date_naive())?;
    let empty = DealFields {
        title: String::new(),
        description: None,
        value: None,
        currency: crate::domain::DEFAULT_CURRENCY.to_owned(),
        stage: target.key.clone(),
        probability: outcome.probability,
        expected_close_date: None,
        actual_close_date: outcome.actual_close_date,
        owner_id: None,
        company_id: None,
        primary_contact_id: None,
        source: None,
        close_reason: outcome.close_reason,
        custom_fields: serde_json::Map::new(),
    };
    let fields = merge(empty, &ch);
    let row = repo::insert_deal(&tx, &fields, user.user_id).await?;
    repo::insert_history(&tx, row.id, None, &row.fields.stage, user.user_id).await?;
    publish(&tx, user, "deal.created", basic(&row)).await?;
    if let Some(kind) = outcome.closes {
        publish_closed(&tx, user, kind, &row).await?;
    }
    tx.commit().await?;
    drop(conn);
    Ok(state.lookups.respond_one(&caller.ctx, row).await)
}

pub async fn update_deal(state: &AppState, caller: &Caller, id: i32, mut ch: DealChanges) -> Result<DealResponse, ApiError> {
    let user = &caller.user;
    let scope = user.require(Resource::Deals, Action::Write)?;
    if scope == Scope::Own
        && let Some(owner) = ch.owner_id
        && owner != Some(user.user_id)
    {
        return Err(own_only("assign"));
    }
    state.lookups.check_refs(&caller.ctx, refs_of(&ch), user.user_id).await?;

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let stages = Stages(repo::list_stages(&tx).await?);
    let current = repo::deal_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    if !user.can_touch_any(scope, [current.fields.owner_id, current.created_by]) {
        return Err(own_only("change"));
    }
    let from = stages.get(&current.fields.stage).ok_or_else(|| ApiError::internal("deal in an unconfigured stage"))?;
    let target = match &ch.stage {
        Some(key) => stages.require(key)?,
        None => from,
    };
    let before = CurrentStage {
        stage: from,
        probability: current.fields.probability,
        actual_close_date: current.fields.actual_close_date,
        close_reason: current.fields.close_reason.clone(),
    };
    let outcome = apply_stage_rules(Some(before), target, std::mem::take(&mut ch.stage_input), Utc::now().date_naive())?;
    let mut fields = merge(current.fields.clone(), &ch);
    fields.stage = target.key.clone();
    fields.probability = outcome.probability;
    fields.actual_close_date = outcome.actual_close_date;
    fields.close_reason = outcome.close_reason;

    let row = repo::update_deal(&tx, id, &fields).await?;
    publish(&tx, user, "deal.updated", basic(&row)).await?;
    if outcome.changed {
        repo::insert_history(&tx, id, Some(&from.key), &target.key, user.user_id).await?;
        let data = DealStageChangedEvent { deal: basic(&row), from_stage: from.key.clone(), to_stage: target.key.clone() };
        publish(&tx, user, "deal.stage_changed", data).await?;
    }
    if let Some(kind) = outcome.closes {
        publish_closed(&tx, user, kind, &row).await?;
    }
    tx.commit().await?;
    drop(conn);
    Ok(state.lookups.respond_one(&caller.ctx, row).await)
}

pub async fn delete_deal(state: &AppState, caller: &Caller, id: i32) -> Result<(), ApiError> {
    let user = &caller.user;
    let scope = user.require(Resource::Deals, Action::Delete)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let current = repo::deal_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    if !user.can_touch_any(scope, [current.fields.owner_id, current.created_by]) {
        return Err(own_only("delete"));
    }
    let row = repo::delete_deal(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    publish(&tx, user, "deal.deleted", basic(&row)).await?;
    tx.commit().await?;
    Ok(())
}

/// The deal with its names and its stage history.
pub async fn get_deal(state: &AppState, caller: &Caller, id: i32) -> Result<DealResponse, ApiError> {
    let user = &caller.user;
    user.require(Resource::Deals, Action::Read)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let row = repo::deal_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    let history = repo::history(&tx, id).await?;
    tx.commit().await?;
    drop(conn);
    let mut deal = state.lookups.respond_one(&caller.ctx, row).await;
    deal.stage_history = Some(history);
    Ok(deal)
}

pub async fn list_deals(state: &AppState, caller: &Caller, params: &DealListParams) -> Result<Page<DealResponse>, ApiError> {
    let user = &caller.user;
    user.require(Resource::Deals, Action::Read)?;
    let filter = params.filter()?;
    let limit = parse_limit(params.limit.as_deref())?;
    let (sort_name, dir) = parse_sort(params.sort.as_deref(), &SortKey::NAMES, ("created_at", SortDir::Desc))?;
    let sort = SortKey::from_name(sort_name).ok_or_else(|| ApiError::internal("sort whitelist out of sync"))?;
    let descending = dir == SortDir::Desc;
    let sort_id = if descending { format!("-{sort_name}") } else { sort_name.to_owned() };
    let after: Option<DealCursor> = parse_cursor(&state.cursors, params.cursor.as_deref())?;
    if after.as_ref().is_some_and(|c| c.sort != sort_id) {
        return Err(ApiError::new(axum::http::StatusCode::BAD_REQUEST, codes::INVALID_CURSOR, "the cursor belongs to another sort"));
    }

    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let rows = repo::list_deals(&tx, &filter, sort, descending, after.as_ref(), limit).await?;
    let total = if params.with_count() { Some(repo::count_deals(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    drop(conn);
    let page = Page::from_overfetch(rows, limit, total, |last| {
        state.cursors.encode(&DealCursor { sort: sort_id.clone(), v: sort.value_of(last), id: last.id })
    });
    let data = state.lookups.respond(&caller.ctx, page.data).await;
    Ok(Page { data, pagination: page.pagination })
}

pub async fn deals_basic(state: &AppState, caller: &Caller, ids: &[i32]) -> Result<Vec<DealBasicInfo>, ApiError> {
    let user = &caller.user;
    user.require(Resource::Deals, Action::Read)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let rows = repo::basics_by_ids(&tx, ids).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(id, title, stage, value)| DealBasicInfo { id, title, stage, value: value.map_or(0.0, Money::as_f64) })
        .collect())
}

pub async fn pipeline(state: &AppState, caller: &Caller, params: &PipelineParams) -> Result<PipelineViewResponse, ApiError> {
    let user = &caller.user;
    user.require(Resource::Deals, Action::Read)?;
    let (filter, per_stage) = params.parse()?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let stats = repo::pipeline_stats(&tx, &filter).await?;
    let deals = if per_stage > 0 { repo::board_deals(&tx, &filter, per_stage).await? } else { Vec::new() };
    tx.commit().await?;
    drop(conn);

    let mut deals = state.lookups.respond(&caller.ctx, deals).await.into_iter().peekable();
    let totals = stats.first().map_or(PipelineTotals { total_deals: 0, total_value: 0.0, total_weighted_value: 0.0 }, |s| {
        PipelineTotals { total_deals: s.all_deals, total_value: s.all_value, total_weighted_value: s.all_weighted }
    });
    let mut stages = Vec::with_capacity(stats.len());
    for s in stats {
        // Deals come in pipeline order, grouped by stage.
        let mut in_stage = Vec::new();
        while let Some(d) = deals.next_if(|d| d.stage == s.stage.key) {
            in_stage.push(d);
        }
        stages.push(PipelineStage {
            stage: s.stage.key,
            name: s.stage.name,
            kind: s.stage.kind,
            position: s.stage.position,
            probability: s.stage.probability,
            deal_count: s.deal_count,
            total_value: s.total_value,
            weighted_value: s.weighted_value,
            deals: in_stage,
        });
    }
    Ok(PipelineViewResponse { stages, totals })
}

fn period_label(unit: &str, start: chrono::NaiveDate) -> String {
    if unit == "quarter" {
        format!("{}-Q{}", start.year(), start.month0() / 3 + 1)
    } else {
        format!("{}-{:02}", start.year(), start.month())
    }
}

pub async fn forecast(state: &AppState, caller: &Caller, params: &Forecast) -> Result<ForecastResponse, ApiError> {
    let user = &caller.user;
    user.require(Resource::Deals, Action::Read)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let rows = repo::forecast(&tx, params.unit, params.from, params.to, &params.filter).await?;
    tx.commit().await?;
    let mut response = ForecastResponse {
        group_by: params.unit.to_owned(),
        periods: Vec::new(),
        unscheduled: Unscheduled { open_deal_count: 0, open_value: 0.0, weighted_value: 0.0 },
        totals: ForecastTotals { open_value: 0.0, weighted_value: 0.0, won_value: 0.0 },
    };
    for r in rows {
        match (r.total, r.start) {
            (true, _) => {
                response.totals = ForecastTotals { open_value: r.open_value, weighted_value: r.weighted, won_value: r.won_value }
            }
            (false, None) => {
                response.unscheduled =
                    Unscheduled { open_deal_count: r.open_count, open_value: r.open_value, weighted_value: r.weighted }
            }
            (false, Some(start)) => response.periods.push(ForecastPeriod {
                period: period_label(params.unit, start),
                start,
                open_deal_count: r.open_count,
                open_value: r.open_value,
                weighted_value: r.weighted,
                won_deal_count: r.won_count,
                won_value: r.won_value,
            }),
        }
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------
// Deal contacts

/// The deal, locked, when the caller may change it.
async fn deal_to_change(tx: &TenantTx<'_>, user: &AuthUser, id: i32) -> Result<DealRow, ApiError> {
    let scope = user.require(Resource::Deals, Action::Write)?;
    let deal = repo::deal_for_update(tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    if !user.can_touch_any(scope, [deal.fields.owner_id, deal.created_by]) {
        return Err(own_only("change"));
    }
    Ok(deal)
}

pub async fn add_deal_contact(
    state: &AppState,
    caller: &Caller,
    deal_id: i32,
    contact_id: i32,
    role: &str,
) -> Result<DealContactInfo, ApiError> {
    let user = &caller.user;
    // The deal first (404/403 before asking contact-service), holding neither its lock nor
    // a pooled connection during the remote call; the foreign key keeps the insert honest.
    {
        let mut conn = state.db.connect().await?;
        let tx = conn.tenant(&user.tenant_id).await?;
        deal_to_change(&tx, user, deal_id).await?;
        tx.rollback().await?;
    }
    let contact = state.lookups.check_contact(&caller.ctx, contact_id).await?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let row = repo::add_deal_contact(&tx, deal_id, contact_id, role, user.user_id)
        .await?
        .ok_or_else(|| ApiError::conflict("CONTACT_ON_DEAL", "the contact is already on this deal"))?;
    tx.commit().await?;
    Ok(DealContactInfo {
        deal_id: row.deal_id,
        contact_id: row.contact_id,
        role: row.role,
        contact_name: Some(contact.full_name()),
        contact_email: Some(contact.email),
        created_at: row.created_at,
    })
}

pub async fn list_deal_contacts(state: &AppState, caller: &Caller, deal_id: i32) -> Result<Vec<DealContactInfo>, ApiError> {
    let user = &caller.user;
    user.require(Resource::Deals, Action::Read)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    repo::deal_by_id(&tx, deal_id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    let rows = repo::list_deal_contacts(&tx, deal_id).await?;
    tx.commit().await?;
    drop(conn);
    let wanted = Wanted { contacts: rows.iter().map(|r| r.contact_id).collect(), ..Wanted::default() };
    let names = state.lookups.names(&caller.ctx, &wanted).await;
    Ok(rows
        .into_iter()
        .map(|r| {
            let contact = names.contacts.get(&r.contact_id);
            DealContactInfo {
                deal_id: r.deal_id,
                contact_id: r.contact_id,
                role: r.role,
                contact_name: contact.map(|c| c.full_name()),
                contact_email: contact.map(|c| c.email.clone()),
                created_at: r.created_at,
            }
        })
        .collect())
}

pub async fn remove_deal_contact(state: &AppState, caller: &Caller, deal_id: i32, contact_id: i32) -> Result<(), ApiError> {
    let user = &caller.user;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    deal_to_change(&tx, user, deal_id).await?;
    if !repo::remove_deal_contact(&tx, deal_id, contact_id).await? {
        return Err(ApiError::not_found("contact on this deal"));
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Stage configuration (admin)

fn stage_exists(e: tokio_postgres::Error) -> ApiError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        ApiError::conflict("STAGE_EXISTS", "a stage with this key exists")
    } else {
        e.into()
    }
}

fn needs_open_stage() -> ApiError {
    ApiError::conflict("LAST_OPEN_STAGE", "the pipeline needs at least one open stage")
}

pub async fn list_stages(state: &AppState, user: &AuthUser) -> Result<Vec<PipelineStageInfo>, ApiError> {
    user.require(Resource::PipelineStages, Action::Read)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let stages = repo::list_stages(&tx).await?;
    tx.commit().await?;
    Ok(stages)
}

pub async fn create_stage(state: &AppState, user: &AuthUser, input: &StageConfigInput) -> Result<PipelineStageInfo, ApiError> {
    user.require(Resource::PipelineStages, Action::Write)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let stages = repo::lock_stages(&tx).await?;
    let next = stages.iter().map(|s| s.position).max().map_or(1, |p| p.saturating_add(1));
    let stage = input.parse(None, next)?;
    let created = repo::insert_stage(&tx, &stage).await.map_err(stage_exists)?;
    tx.commit().await?;
    Ok(created)
}

pub async fn update_stage(
    state: &AppState,
    user: &AuthUser,
    key: &str,
    input: &StageConfigInput,
) -> Result<PipelineStageInfo, ApiError> {
    user.require(Resource::PipelineStages, Action::Write)?;
    let stage = input.parse(Some(key), 0)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let stages = repo::lock_stages(&tx).await?;
    let current = stages.iter().find(|s| s.key == key).ok_or_else(|| ApiError::not_found("stage"))?;
    if stage.kind != current.kind && repo::stage_deal_count(&tx, key).await? > 0 {
        return Err(ApiError::conflict("STAGE_IN_USE", "the stage holds deals: its kind cannot change"));
    }
    if !stages.iter().any(|s| if s.key == key { stage.kind == StageKind::Open } else { s.kind == StageKind::Open }) {
        return Err(needs_open_stage());
    }
    let updated = repo::update_stage(&tx, key, &stage).await.map_err(stage_exists)?.ok_or_else(|| ApiError::not_found("stage"))?;
    tx.commit().await?;
    Ok(updated)
}

/// Deletes a stage; one that holds deals only with `move_to` (a stage of the same kind),
/// each moved deal getting a history entry and a `deal.stage_changed` event.
pub async fn delete_stage(state: &AppState, user: &AuthUser, key: &str, move_to: Option<&str>) -> Result<(), ApiError> {
    user.require(Resource::PipelineStages, Action::Delete)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let stages = Stages(repo::lock_stages(&tx).await?);
    let current = stages.get(key).ok_or_else(|| ApiError::not_found("stage"))?;
    if current.kind == StageKind::Open && !stages.0.iter().any(|s| s.key != key && s.kind == StageKind::Open) {
        return Err(needs_open_stage());
    }
    let held = repo::stage_deal_count(&tx, key).await?;
    if held > 0 {
        let Some(move_to) = move_to.map(str::trim).filter(|m| !m.is_empty()) else {
            return Err(ApiError::conflict("STAGE_IN_USE", "the stage holds deals: give ?move_to=<stage key> to move them")
                .with_details(json!({ "deal_count": held })));
        };
        let target = stages.require(move_to)?;
        if target.key == key || !movable(current.kind, target.kind) {
            return Err(ApiError::unprocessable(
                "INVALID_STAGE_MOVE",
                format!("deals of a {} stage move to another {} stage", current.kind.as_str(), current.kind.as_str()),
            ));
        }
        let moved = repo::move_stage_deals(&tx, key, target, user.user_id).await?;
        for row in &moved {
            let data = DealStageChangedEvent { deal: basic(row), from_stage: key.to_owned(), to_stage: target.key.clone() };
            publish(&tx, user, "deal.stage_changed", data).await?;
        }
    }
    repo::delete_stage(&tx, key).await?;
    tx.commit().await?;
    Ok(())
}
