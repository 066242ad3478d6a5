//! The pipeline view and the forecast: aggregates computed in SQL per currency (amounts in
//! different currencies are never added), deals named in one batch.

use std::collections::HashMap;

use chrono::Datelike;
use crm_client_deal::{
    ByCurrency, ForecastPeriod, ForecastResponse, ForecastTotals, PipelineStage, PipelineTotals, PipelineViewResponse, Unscheduled,
    single_currency,
};
use crm_web::{ApiError, Can, perm};

use crate::AppState;
use crate::input::{ForecastParams, PipelineParams};
use crate::repo::pipeline as repo;
use crate::repo::stages as stage_repo;

/// Count and per-currency sums of one group of deals.
#[derive(Default)]
struct Sums {
    deal_count: i64,
    value: ByCurrency,
    weighted: ByCurrency,
}

/// Every configured stage in order (also empty ones) with counts and per-currency totals
/// computed in SQL, and the `per_stage` most recently updated deals of each.
pub async fn pipeline(state: &AppState, can: &Can<perm::DealsRead>, params: &PipelineParams) -> Result<PipelineViewResponse, ApiError> {
    let (filter, per_stage) = params.parse()?;
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let configured = stage_repo::list_stages(&tx).await?;
    let stats = repo::pipeline_stats(&tx, &filter).await?;
    let deals = if per_stage > 0 { repo::board_deals(&tx, &filter, per_stage).await? } else { Vec::new() };
    tx.commit().await?;

    // Stage None: over all stages.
    let mut sums: HashMap<Option<String>, Sums> = HashMap::new();
    for a in stats {
        let group = sums.entry(a.stage).or_default();
        match a.currency {
            None => group.deal_count = a.deal_count,
            Some(currency) => {
                group.value.insert(currency.clone(), a.total_value);
                group.weighted.insert(currency, a.weighted_value);
            }
        }
    }
    let all = sums.remove(&None).unwrap_or_default();
    let totals = PipelineTotals {
        total_deals: all.deal_count,
        total_value: single_currency(&all.value),
        total_weighted_value: single_currency(&all.weighted),
        total_value_by_currency: all.value,
        total_weighted_value_by_currency: all.weighted,
    };

    let mut deals = state.lookups.respond(&can.ctx, deals).await.into_iter().peekable();
    let mut stages = Vec::with_capacity(configured.len());
    for s in configured {
        // Deals come in pipeline order, grouped by stage.
        let mut in_stage = Vec::new();
        while let Some(d) = deals.next_if(|d| d.stage == s.key) {
            in_stage.push(d);
        }
        let sums = sums.remove(&Some(s.key.clone())).unwrap_or_default();
        stages.push(PipelineStage {
            stage: s.key,
            name: s.name,
            kind: s.kind,
            position: s.position,
            probability: s.probability,
            deal_count: sums.deal_count,
            total_value: single_currency(&sums.value),
            weighted_value: single_currency(&sums.weighted),
            total_value_by_currency: sums.value,
            weighted_value_by_currency: sums.weighted,
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

/// One forecast group (a period, the unscheduled deals or the grand total).
#[derive(Default)]
struct ForecastSums {
    open_count: i64,
    won_count: i64,
    open: ByCurrency,
    weighted: ByCurrency,
    won: ByCurrency,
}

/// Open deals (value and weighted value) by expected close period, won deals by actual
/// close period; amounts per currency.
pub async fn forecast(state: &AppState, can: &Can<perm::DealsRead>, params: &ForecastParams) -> Result<ForecastResponse, ApiError> {
    let params = params.parse()?;
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = repo::forecast(&tx, params.unit, params.from, params.to, &params.filter).await?;
    tx.commit().await?;

    // Rows come ordered: periods (unscheduled first), then the grand total; within a group
    // the all-currency row first.
    let mut groups: Vec<((bool, Option<chrono::NaiveDate>), ForecastSums)> = Vec::new();
    for r in rows {
        let key = (r.total, r.start);
        if groups.last().is_none_or(|(k, _)| *k != key) {
            groups.push((key, ForecastSums::default()));
        }
        let Some((_, sums)) = groups.last_mut() else { continue };
        match r.currency {
            None => (sums.open_count, sums.won_count) = (r.open_count, r.won_count),
            Some(currency) => {
                if r.open_count > 0 {
                    sums.open.insert(currency.clone(), r.open_value);
                    sums.weighted.insert(currency.clone(), r.weighted);
                }
                if r.won_count > 0 {
                    sums.won.insert(currency, r.won_value);
                }
            }
        }
    }
    let mut response = ForecastResponse {
        group_by: params.unit.to_owned(),
        periods: Vec::new(),
        unscheduled: Unscheduled {
            open_deal_count: 0,
            open_value: Some(0.0),
            weighted_value: Some(0.0),
            open_value_by_currency: ByCurrency::new(),
            weighted_value_by_currency: ByCurrency::new(),
        },
        totals: ForecastTotals {
            open_value: Some(0.0),
            weighted_value: Some(0.0),
            won_value: Some(0.0),
            open_value_by_currency: ByCurrency::new(),
            weighted_value_by_currency: ByCurrency::new(),
            won_value_by_currency: ByCurrency::new(),
        },
    };
    for ((total, start), s) in groups {
        match (total, start) {
            (true, _) => {
                response.totals = ForecastTotals {
                    open_value: single_currency(&s.open),
                    weighted_value: single_currency(&s.weighted),
                    won_value: single_currency(&s.won),
                    open_value_by_currency: s.open,
                    weighted_value_by_currency: s.weighted,
                    won_value_by_currency: s.won,
                }
            }
            (false, None) => {
                response.unscheduled = Unscheduled {
                    open_deal_count: s.open_count,
                    open_value: single_currency(&s.open),
                    weighted_value: single_currency(&s.weighted),
                    open_value_by_currency: s.open,
                    weighted_value_by_currency: s.weighted,
                }
            }
            (false, Some(start)) => response.periods.push(ForecastPeriod {
                period: period_label(params.unit, start),
                start,
                open_deal_count: s.open_count,
                won_deal_count: s.won_count,
                open_value: single_currency(&s.open),
                weighted_value: single_currency(&s.weighted),
                won_value: single_currency(&s.won),
                open_value_by_currency: s.open,
                weighted_value_by_currency: s.weighted,
                won_value_by_currency: s.won,
            }),
        }
    }
    Ok(response)
}
