-- Issue 14 item 3: every index in a tenant schema is a relation in the catalog, times the
-- number of tenants. An index stays only if a query or a constraint needs it
-- (docs/SCALING.md lists them).

-- deals (stage_key, currency), from V3 "the pipeline and forecast totals group by stage and
-- currency": those totals (repo/pipeline.rs pipeline_stats, forecast) aggregate value and
-- weighted_value over every deal of the tenant, columns this index does not hold, so they
-- read the table whatever the index; and the `stage` filter of the deal list and the
-- pipeline board's per-stage top deals are served by deals_stage_board (stage_key,
-- updated_at DESC, id DESC), which has the same leading column.
DROP INDEX IF EXISTS deals_stage_currency;
