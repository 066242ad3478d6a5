//! Deals: create, replace, patch, delete (with their stage rules and events), read, list.

use axum::http::StatusCode;
use chrono::Utc;
use crm_client_deal::subjects::{DEAL_CLOSED_LOST, DEAL_CLOSED_WON, DEAL_CREATED, DEAL_STAGE_CHANGED, DEAL_UPDATED};
use crm_client_deal::{DealBasicInfo, DealClosedEvent, DealResponse, DealStageChangedEvent, StageKind};
use crm_events::publish;
use crm_tenant::TenantTx;
use crm_web::pagination::{SortDir, parse_cursor, parse_sort};
use crm_web::etag::{ETag, IfMatch};
use crm_web::{ApiError, Can, FieldErrors, Page, Scope, codes, parse_limit, perm};

use super::{basic, own_only};
use crate::AppState;
use crate::domain::{CurrentStage, DEFAULT_CURRENCY, Money, Stages, apply_stage_rules, check_amount_fits};
use crate::input::{BasicParams, DealChanges, DealListParams, DealPatch, NewDeal};
use crate::lookup::Refs;
use crate::repo::deals as repo;
use crate::repo::stages as stage_repo;
use crate::repo::{DealCursor, DealFields, DealRow, SortKey};

/// Publishes `deal.closed_won` or `deal.closed_lost` for a deal entering a closed stage.
async fn publish_closed(tx: &TenantTx, actor: i32, kind: StageKind, row: &DealRow) -> Result<(), ApiError> {
    let event_type = if kind == StageKind::Won { DEAL_CLOSED_WON } else { DEAL_CLOSED_LOST };
    let data = DealClosedEvent {
        deal: basic(row),
        owner_id: row.fields.owner_id,
        company_id: row.fields.company_id,
        primary_contact_id: row.fields.primary_contact_id,
        actual_close_date: row.fields.actual_close_date.unwrap_or_else(|| Utc::now().date_naive()),
        close_reason: row.fields.close_reason.clone(),
    };
    publish(tx, Some(actor), event_type, data).await?;
    Ok(())
}

/// The non-stage fields of `base` with `ch` applied.
/// A deal's writable fields with their API names (`value` in major units), compared for
/// the `changes` of `deal.updated`.
fn fields_json(f: &DealFields) -> serde_json::Value {
    serde_json::json!({
        "title": f.title,
        "description": f.description,
        "value": f.value.map(Money::as_f64),
        "currency": f.currency,
        "stage": f.stage,
        "probability": f.probability,
        "expected_close_date": f.expected_close_date,
        "actual_close_date": f.actual_close_date,
        "owner_id": f.owner_id,
        "company_id": f.company_id,
        "primary_contact_id": f.primary_contact_id,
        "source": f.source,
        "close_reason": f.close_reason,
        "custom_fields": f.custom_fields,
    })
}

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

/// References a new deal sets (each is checked with its owning service).
fn refs_of(ch: &DealChanges) -> Refs {
    Refs { company: ch.company_id.flatten(), contact: ch.primary_contact_id.flatten(), owner: ch.owner_id.flatten() }
}

/// References a write CHANGES on `current`: only those are checked with their owning
/// service. An unchanged one is not re-validated, so a deal PUT back exactly as read is
/// accepted even when its company, contact or owner has been deleted meanwhile.
fn changed_refs(ch: &DealChanges, current: &DealFields) -> Refs {
    let changed = |new: Option<Option<i32>>, old: Option<i32>| new.flatten().filter(|id| Some(*id) != old);
    Refs {
        company: changed(ch.company_id, current.company_id),
        contact: changed(ch.primary_contact_id, current.primary_contact_id),
        owner: changed(ch.owner_id, current.owner_id),
    }
}

/// Whether every reference in `wanted` has been checked (`checked`).
fn covered(wanted: Refs, checked: Refs) -> bool {
    let ok = |w: Option<i32>, c: Option<i32>| w.is_none() || w == c;
    ok(wanted.company, checked.company) && ok(wanted.contact, checked.contact) && ok(wanted.owner, checked.owner)
}

/// The amount against its currency's minor unit (ISO 4217), when either changes.
fn check_amount(fields: &DealFields, before: Option<&DealFields>) -> Result<(), ApiError> {
    if before.is_some_and(|b| b.value == fields.value && b.currency == fields.currency) {
        return Ok(());
    }
    let mut e = FieldErrors::new();
    check_amount_fits(&mut e, "value", fields.value, &fields.currency);
    e.into_result()
}

/// Creates a deal. Company, primary contact and owner must exist (422); the owner defaults
/// to the caller (a sales rep may only create deals it owns), the stage to the first open
/// one, the probability to the stage's.
pub async fn create_deal(state: &AppState, can: &Can<perm::DealsWrite>, input: NewDeal) -> Result<DealResponse, ApiError> {
    let mut ch = input.parse(None)?;
    let me = can.user_id;
    let owner = *ch.owner_id.get_or_insert(Some(me));
    if can.scope == Scope::Own && owner != Some(me) {
        return Err(own_only("create"));
    }
    let empty = DealFields {
        title: String::new(),
        description: None,
        value: None,
        currency: DEFAULT_CURRENCY.to_owned(),
        stage: String::new(),
        probability: 0,
        expected_close_date: None,
        actual_close_date: None,
        owner_id: None,
        company_id: None,
        primary_contact_id: None,
        source: None,
        close_reason: None,
        custom_fields: serde_json::Map::new(),
    };
    let mut fields = merge(empty, &ch);
    check_amount(&fields, None)?;
    state.lookups.check_refs(&can.ctx, refs_of(&ch), me).await?;

    let tx = state.db.tenant(&can.tenant_id).await?;
    let stages = Stages(stage_repo::list_stages(&tx).await?);
    let target = match &ch.stage {
        Some(key) => stages.require(key)?,
        None => stages.initial()?,
    };
    let outcome = apply_stage_rules(None, target, std::mem::take(&mut ch.stage_input), Utc::now().date_naive())?;
    fields.stage = target.key.clone();
    fields.probability = outcome.probability;
    fields.actual_close_date = outcome.actual_close_date;
    fields.close_reason = outcome.close_reason;
    let row = repo::insert_deal(&tx, &fields, me).await?;
    repo::insert_history(&tx, row.id, None, &row.fields.stage, me).await?;
    publish(&tx, Some(me), DEAL_CREATED, basic(&row)).await?;
    if let Some(kind) = outcome.closes {
        publish_closed(&tx, me, kind, &row).await?;
    }
    tx.commit().await?;
    Ok(state.lookups.respond_one(&can.ctx, row).await)
}

/// `PUT`: replaces every field of a deal (`stage` required). Stage rules as for a patch.
pub async fn replace_deal(
    state: &AppState,
    can: &Can<perm::DealsWrite>,
    id: i32,
    if_match: &IfMatch,
    input: NewDeal,
) -> Result<DealResponse, ApiError> {
    let changes = input.parse(Some(id))?;
    update_deal(state, can, id, if_match, changes).await
}

/// `PATCH`: changes the fields present, e.g. the stage (unknown stage 422 `UNKNOWN_STAGE`;
/// a won or lost deal moves only with `"reopen": true`, else 422 `DEAL_CLOSED`).
pub async fn patch_deal(
    state: &AppState,
    can: &Can<perm::DealsWrite>,
    id: i32,
    if_match: &IfMatch,
    patch: DealPatch,
) -> Result<DealResponse, ApiError> {
    let changes = patch.parse()?;
    update_deal(state, can, id, if_match, changes).await
}

/// Attempts of a write whose references keep changing under it (each attempt that finds a
/// reference it has not checked releases the row, checks it remotely and tries again).
const WRITE_ATTEMPTS: usize = 3;

async fn update_deal(
    state: &AppState,
    can: &Can<perm::DealsWrite>,
    id: i32,
    if_match: &IfMatch,
    mut ch: DealChanges,
) -> Result<DealResponse, ApiError> {
    let me = can.user_id;
    let mut checked = Refs::default();
    for _ in 0..WRITE_ATTEMPTS {
        let tx = state.db.tenant(&can.tenant_id).await?;
        let stages = Stages(stage_repo::list_stages(&tx).await?);
        let current = repo::deal_for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
        if !can.reaches([current.fields.owner_id, current.created_by]) {
            return Err(own_only("change"));
        }
        if_match.check(&ETag::of(current.updated_at))?;
        if can.scope == Scope::Own
            && let Some(owner) = ch.owner_id
            && owner != current.fields.owner_id
            && owner != Some(me)
        {
            return Err(own_only("assign"));
        }
        let wanted = changed_refs(&ch, &current.fields);
        if !covered(wanted, checked) {
            // No remote call with a row lock or a pooled connection held.
            tx.rollback().await?;
            state.lookups.check_refs(&can.ctx, wanted, me).await?;
            checked = wanted;
            continue;
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
        check_amount(&fields, Some(&current.fields))?;

        let row = repo::update_deal(&tx, id, &fields).await?;
        // `changes` (old -> new per field) for the audit log: exact here, from the locked row.
        let mut data = serde_json::to_value(basic(&row)).map_err(ApiError::internal)?;
        data["changes"] = crm_events::changes(&fields_json(&current.fields), &fields_json(&row.fields), &[]).map_err(ApiError::internal)?;
        publish(&tx, Some(me), DEAL_UPDATED, data).await?;
        if outcome.changed {
            repo::insert_history(&tx, id, Some(&from.key), &target.key, me).await?;
            let data = DealStageChangedEvent { deal: basic(&row), from_stage: from.key.clone(), to_stage: target.key.clone() };
            publish(&tx, Some(me), DEAL_STAGE_CHANGED, data).await?;
        }
        if let Some(kind) = outcome.closes {
            publish_closed(&tx, me, kind, &row).await?;
        }
        tx.commit().await?;
        return Ok(state.lookups.respond_one(&can.ctx, row).await);
    }
    Err(ApiError::conflict(codes::CONFLICT, "the deal's references kept changing during the write: retry"))
}

/// `DELETE /deals/{id}`: moves the deal to the trash (`deal.trashed`, issue 16); with
/// `?erase=true` (admins) erases it for good, also from the trash (`deal.deleted`). See
/// [`super::trash`].
pub async fn delete_deal(state: &AppState, can: &Can<perm::DealsDelete>, id: i32, if_match: &IfMatch, erase: bool) -> Result<(), ApiError> {
    if erase { super::trash::erase_deal(state, can, id, if_match).await } else { super::trash::trash_deal(state, can, id, if_match).await }
}

/// `company.deleted` (a company gone for good): its deals drop the reference, each
/// publishing `deal.updated`. Idempotent: a second run finds nothing to change.
pub async fn drop_company(tx: &TenantTx, actor: Option<i32>, company_id: i32) -> Result<usize, ApiError> {
    let rows = repo::clear_company(tx, company_id).await?;
    for row in &rows {
        publish(tx, actor, DEAL_UPDATED, basic(row)).await?;
    }
    Ok(rows.len())
}

/// `contact.deleted` (a contact gone for good): deals drop it as primary contact and from
/// their contacts, each changed deal publishing `deal.updated`. Idempotent.
pub async fn drop_contact(tx: &TenantTx, actor: Option<i32>, contact_id: i32) -> Result<usize, ApiError> {
    let rows = repo::clear_contact(tx, contact_id).await?;
    for row in &rows {
        publish(tx, actor, DEAL_UPDATED, basic(row)).await?;
    }
    Ok(rows.len())
}

/// The deal with its names and its stage history.
pub async fn get_deal(state: &AppState, can: &Can<perm::DealsRead>, id: i32) -> Result<DealResponse, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let row = repo::deal_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("deal"))?;
    let history = repo::history(&tx, id).await?;
    tx.commit().await?;
    let mut deal = state.lookups.respond_one(&can.ctx, row).await;
    deal.stage_history = Some(history);
    Ok(deal)
}

/// Filters, whitelisted sorts, keyset pagination; names looked up in one batch per service
/// for the whole page.
pub async fn list_deals(state: &AppState, can: &Can<perm::DealsRead>, params: &DealListParams) -> Result<Page<DealResponse>, ApiError> {
    let filter = params.filter()?;
    let limit = parse_limit(params.limit.as_deref())?;
    let (sort_name, dir) = parse_sort(params.sort.as_deref(), &SortKey::NAMES, ("created_at", SortDir::Desc))?;
    let sort = SortKey::from_name(sort_name).ok_or_else(|| ApiError::internal("sort whitelist out of sync"))?;
    let descending = dir == SortDir::Desc;
    let sort_id = if descending { format!("-{sort_name}") } else { sort_name.to_owned() };
    let after: Option<DealCursor> = parse_cursor(&state.cursors, params.cursor.as_deref())?;
    if after.as_ref().is_some_and(|c| c.sort != sort_id) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_CURSOR, "the cursor belongs to another sort"));
    }

    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = repo::list_deals(&tx, &filter, sort, descending, after.as_ref(), limit).await?;
    let total = if params.with_count() { Some(repo::count_deals(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    let page = Page::from_overfetch(rows, limit, total, |last| {
        state.cursors.encode(&DealCursor { sort: sort_id.clone(), v: sort.value_of(last), id: last.id })
    });
    let data = state.lookups.respond(&can.ctx, page.data).await;
    Ok(Page { data, pagination: page.pagination })
}

async fn basics(state: &AppState, can: &Can<perm::DealsRead>, ids: &[i32]) -> Result<Vec<DealBasicInfo>, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let rows = repo::basics_by_ids(&tx, ids).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(id, title, stage, value)| DealBasicInfo { id, title, stage, value: value.map_or(0.0, Money::as_f64) })
        .collect())
}

/// The deals among `?ids=` (at most 500) that exist in the caller's tenant.
pub async fn deals_basic(state: &AppState, can: &Can<perm::DealsRead>, params: &BasicParams) -> Result<Vec<DealBasicInfo>, ApiError> {
    let ids = params.ids()?;
    basics(state, can, &ids).await
}

/// One deal's id, title, stage and value.
pub async fn deal_basic(state: &AppState, can: &Can<perm::DealsRead>, id: i32) -> Result<DealBasicInfo, ApiError> {
    basics(state, can, &[id]).await?.into_iter().next().ok_or_else(|| ApiError::not_found("deal"))
}
