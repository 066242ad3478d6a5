//! The pipeline view and the forecast: aggregated in SQL.

use chrono::NaiveDate;
use crm_tenant::{DbError, TenantTx};

use super::deals::{DEAL_COLUMNS, DealRow, deal_from};

/// Optional narrowing of the pipeline view and the forecast.
#[derive(Debug, Default)]
pub struct BoardFilter {
    pub owner_id: Option<i32>,
    pub currency: Option<String>,
}

/// One aggregate of the pipeline: `stage` None = over all stages; `currency` None = over all
/// currencies (then only the count is meaningful: amounts are never added across currencies).
pub struct StageAggregate {
    pub stage: Option<String>,
    pub currency: Option<String>,
    pub deal_count: i64,
    pub total_value: f64,
    pub weighted_value: f64,
}

/// Counts and sums by stage and currency, by stage, by currency and overall (one scan).
pub async fn pipeline_stats(tx: &TenantTx, f: &BoardFilter) -> Result<Vec<StageAggregate>, DbError> {
    // `weighted_value` is stored per deal, rounded to its currency's minor unit as each deal
    // shows it (migration V3): the totals equal the sum of the deals' `weighted_value`.
    let stmt = tx
        .prepare_cached(
            "SELECT d.stage_key, d.currency, GROUPING(d.stage_key) = 1, GROUPING(d.currency) = 1, count(*)::int8,
                    coalesce(sum(d.value), 0)::float8, coalesce(sum(d.weighted_value), 0)::float8
             FROM deals d
             WHERE d.deleted_at IS NULL AND ($1::int4 IS NULL OR d.owner_id = $1) AND ($2::text IS NULL OR d.currency = $2)
             GROUP BY GROUPING SETS ((d.stage_key, d.currency), (d.stage_key), (d.currency), ())",
        )
        .await?;
    let rows = tx.query(&stmt, &[&f.owner_id, &f.currency]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let (all_stages, all_currencies): (bool, bool) = (r.get(2), r.get(3));
            StageAggregate {
                stage: if all_stages { None } else { r.get(0) },
                currency: if all_currencies { None } else { r.get(1) },
                deal_count: r.get(4),
                total_value: r.get(5),
                weighted_value: r.get(6),
            }
        })
        .collect())
}

/// The `per_stage` most recently updated deals of every stage, in pipeline order.
pub async fn board_deals(tx: &TenantTx, f: &BoardFilter, per_stage: i64) -> Result<Vec<DealRow>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {DEAL_COLUMNS} FROM pipeline_stages s
             CROSS JOIN LATERAL (
                 SELECT x.id FROM deals x
                 WHERE x.stage_key = s.key AND x.deleted_at IS NULL AND ($1::int4 IS NULL OR x.owner_id = $1) AND ($2::text IS NULL OR x.currency = $2)
                 ORDER BY x.updated_at DESC, x.id DESC LIMIT $3) top
             JOIN deals d ON d.id = top.id
             ORDER BY s.position, s.key, d.updated_at DESC, d.id DESC"
        ))
        .await?;
    Ok(tx.query(&stmt, &[&f.owner_id, &f.currency, &per_stage]).await?.iter().map(deal_from).collect())
}

/// One row of the forecast: a period (`start` = first day) or the open deals without a date
/// (`start` = None), or the grand total (`total` = true); per currency, or over all
/// currencies (`currency` None: only the counts are meaningful).
pub struct ForecastRow {
    pub start: Option<NaiveDate>,
    pub total: bool,
    pub currency: Option<String>,
    pub open_count: i64,
    pub open_value: f64,
    pub weighted: f64,
    pub won_count: i64,
    pub won_value: f64,
}

/// Open deals by expected close period and won deals by actual close period (`unit` is
/// `month` or `quarter`), within the inclusive date range, plus the grand total; each by
/// currency and over all currencies.
pub async fn forecast(
    tx: &TenantTx,
    unit: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    f: &BoardFilter,
) -> Result<Vec<ForecastRow>, DbError> {
    let stmt = tx
        .prepare_cached(
            "WITH items AS (
                 SELECT true AS open, date_trunc($1, d.expected_close_date::timestamp)::date AS p, d.currency, d.value,
                        d.weighted_value AS w
                 FROM deals d JOIN pipeline_stages s ON s.key = d.stage_key
                 WHERE s.kind = 'open' AND d.deleted_at IS NULL
                   AND (d.expected_close_date IS NULL
                        OR (($2::date IS NULL OR d.expected_close_date >= $2) AND ($3::date IS NULL OR d.expected_close_date <= $3)))
                   AND ($4::int4 IS NULL OR d.owner_id = $4) AND ($5::text IS NULL OR d.currency = $5)
                 UNION ALL
                 SELECT false, date_trunc($1, d.actual_close_date::timestamp)::date, d.currency, d.value, NULL
                 FROM deals d JOIN pipeline_stages s ON s.key = d.stage_key
                 WHERE s.kind = 'won' AND d.actual_close_date IS NOT NULL AND d.deleted_at IS NULL
                   AND ($2::date IS NULL OR d.actual_close_date >= $2) AND ($3::date IS NULL OR d.actual_close_date <= $3)
                   AND ($4::int4 IS NULL OR d.owner_id = $4) AND ($5::text IS NULL OR d.currency = $5))
             SELECT p, GROUPING(p) = 1, currency, GROUPING(currency) = 1,
                    count(*) FILTER (WHERE open), coalesce(sum(value) FILTER (WHERE open), 0)::float8,
                    coalesce(sum(w), 0)::float8,
                    count(*) FILTER (WHERE NOT open), coalesce(sum(value) FILTER (WHERE NOT open), 0)::float8
             FROM items GROUP BY GROUPING SETS ((p, currency), (p), (currency), ())
             ORDER BY GROUPING(p), p NULLS FIRST, GROUPING(currency) DESC, currency",
        )
        .await?;
    let rows = tx.query(&stmt, &[&unit, &from, &to, &f.owner_id, &f.currency]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let all_currencies: bool = r.get(3);
            ForecastRow {
                start: r.get(0),
                total: r.get(1),
                currency: if all_currencies { None } else { r.get(2) },
                open_count: r.get(4),
                open_value: r.get(5),
                weighted: r.get(6),
                won_count: r.get(7),
                won_value: r.get(8),
            }
        })
        .collect())
}
