-- Issue 14 item 3: every index in a tenant schema is a relation in the catalog, times the
-- number of tenants. An index stays only if a query or a constraint needs it
-- (docs/SCALING.md lists them).

-- webhooks (id) WHERE status = 'active': the only query filtering on status alone
-- (repo/webhooks.rs enqueue_subscribed) reads every active webhook of the tenant, in no
-- order, from a table of a handful of rows (one or two pages), which a sequential scan does
-- at the same cost; the delivery queries join webhooks by its primary key.
DROP INDEX IF EXISTS webhooks_active;
