//! The pipeline view and the forecast: aggregated in SQL.

use chrono::NaiveDate;
use crm_client_deal::PipelineStageInfo;
use crm_tenant::{DbError, TenantTx};

use super::deals::{DEAL_COLUMNS, DealRow, deal_from};
use super::stages::stage_from;

/// Optional narrowing of the pipeline view and the forecast.
#[derive(Debug, Default)]
pub struct BoardFilter {
    pub owner_id: Option<i32>,
    pub currency: Option<String>,
}

/// One stage with its aggregates, and the totals over all stages (same on every row).
pub struct StageStats {
    pub stage: PipelineStageInfo,
    pub deal_count: i64,
    pub total_value: f64,
    pub weighted_value: f64,
    pub all_deals: i64,
    pub all_value: f64,
    pub all_weighted: f64,
}

pub async fn pipeline_stats(tx: &TenantTx, f: &BoardFilter) -> Result<Vec<StageStats>, DbError> {
    // `weighted_value` is stored per deal, rounded to the cent as each deal shows it
    // (migration V2): the totals equal the sum of the deals' `weighted_value`.
    let stmt = tx
        .prepare_cached(
            "WITH agg AS (
                 SELECT d.stage_key, count(*) AS n, sum(d.value) AS total,
                        sum(d.weighted_value) AS weighted
                 FROM deals d
                 WHERE ($1::int4 IS NULL OR d.owner_id = $1) AND ($2::text IS NULL OR d.currency = $2)
                 GROUP BY d.stage_key)
             SELECT s.key, s.name, s.position, s.probability, s.kind,
                    coalesce(a.n, 0)::int8, coalesce(a.total, 0)::float8, coalesce(a.weighted, 0)::float8,
                    coalesce(sum(a.n) OVER (), 0)::int8, coalesce(sum(a.total) OVER (), 0)::float8,
                    coalesce(sum(a.weighted) OVER (), 0)::float8
             FROM pipeline_stages s LEFT JOIN agg a ON a.stage_key = s.key
             ORDER BY s.position, s.key",
        )
        .await?;
    let rows = tx.query(&stmt, &[&f.owner_id, &f.currency]).await?;
    Ok(rows
        .iter()
        .map(|r| StageStats {
            stage: stage_from(r),
            deal_count: r.get(5),
            total_value: r.get(6),
            weighted_value: r.get(7),
            all_deals: r.get(8),
            all_value: r.get(9),
            all_weighted: r.get(10),
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
                 WHERE x.stage_key = s.key AND ($1::int4 IS NULL OR x.owner_id = $1) AND ($2::text IS NULL OR x.currency = $2)
                 ORDER BY x.updated_at DESC, x.id DESC LIMIT $3) top
             JOIN deals d ON d.id = top.id
             ORDER BY s.position, s.key, d.updated_at DESC, d.id DESC"
        ))
        .await?;
    Ok(tx.query(&stmt, &[&f.owner_id, &f.currency, &per_stage]).await?.iter().map(deal_from).collect())
}

/// One row of the forecast: a period (`start` = first day), the open deals without a date
/// (`start` = None, `total` = false), or the grand total (`total` = true).
pub struct ForecastRow {
    pub start: Option<NaiveDate>,
    pub total: bool,
    pub open_count: i64,
    pub open_value: f64,
    pub weighted: f64,
    pub won_count: i64,
    pub won_value: f64,
}

/// Open deals by expected close period and won deals by actual close period (`unit` is
/// `month` or `quarter`), within the inclusive date range, plus the grand total.
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
                 SELECT true AS open, date_trunc($1, d.expected_close_date::timestamp)::date AS p, d.value,
                        d.weighted_value AS w
                 FROM deals d JOIN pipeline_stages s ON s.key = d.stage_key
                 WHERE s.kind = 'open'
                   AND (d.expected_close_date IS NULL
                        OR (($2::date IS NULL OR d.expected_close_date >= $2) AND ($3::date IS NULL OR d.expected_close_date <= $3)))
                   AND ($4::int4 IS NULL OR d.owner_id = $4) AND ($5::text IS NULL OR d.currency = $5)
                 UNION ALL
                 SELECT false, date_trunc($1, d.actual_close_date::timestamp)::date, d.value, NULL
                 FROM deals d JOIN pipeline_stages s ON s.key = d.stage_key
                 WHERE s.kind = 'won' AND d.actual_close_date IS NOT NULL
                   AND ($2::date IS NULL OR d.actual_close_date >= $2) AND ($3::date IS NULL OR d.actual_close_date <= $3)
                   AND ($4::int4 IS NULL OR d.owner_id = $4) AND ($5::text IS NULL OR d.currency = $5))
             SELECT p, GROUPING(p) = 1,
                    count(*) FILTER (WHERE open), coalesce(sum(value) FILTER (WHERE open), 0)::float8,
                    coalesce(sum(w), 0)::float8,
                    count(*) FILTER (WHERE NOT open), coalesce(sum(value) FILTER (WHERE NOT open), 0)::float8
             FROM items GROUP BY GROUPING SETS ((p), ())
             ORDER BY GROUPING(p), p NULLS FIRST",
        )
        .await?;
    let rows = tx.query(&stmt, &[&unit, &from, &to, &f.owner_id, &f.currency]).await?;
    Ok(rows
        .iter()
        .map(|r| ForecastRow {
            start: r.get(0),
            total: r.get(1),
            open_count: r.get(2),
            open_value: r.get(3),
            weighted: r.get(4),
            won_count: r.get(5),
            won_value: r.get(6),
        })
        .collect())
}
