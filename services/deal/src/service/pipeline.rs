//! The pipeline view and the forecast: aggregates computed in SQL, deals named in one batch.

use chrono::Datelike;
use crm_client_deal::{
    ForecastPeriod, ForecastResponse, ForecastTotals, PipelineStage, PipelineTotals, PipelineViewResponse, Unscheduled,
};
use crm_web::{ApiError, Can, perm};

use crate::AppState;
use crate::input::{ForecastParams, PipelineParams};
use crate::repo::pipeline as repo;

/// Every configured stage in order (also empty ones) with counts and totals computed in
/// SQL, and the `per_stage` most recently updated deals of each.
pub async fn pipeline(state: &AppState, can: &Can<perm::DealsRead>, params: &PipelineParams) -> Result<PipelineViewResponse, ApiError> {
    let (filter, per_stage) = params.parse()?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let stats = repo::pipeline_stats(&tx, &filter).await?;
    let deals = if per_stage > 0 { repo::board_deals(&tx, &filter, per_stage).await? } else { Vec::new() };
    tx.commit().await?;

    let mut deals = state.lookups.respond(&can.ctx, deals).await.into_iter().peekable();
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

/// Open deals (value and weighted value) by expected close period, won deals by actual
/// close period.
pub async fn forecast(state: &AppState, can: &Can<perm::DealsRead>, params: &ForecastParams) -> Result<ForecastResponse, ApiError> {
    let params = params.parse()?;
    let tx = state.db.tenant(&can.tenant_id).await?;
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
