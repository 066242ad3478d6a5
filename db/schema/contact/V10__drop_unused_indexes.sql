-- Issue 14 item 3: every index in a tenant schema is a relation in the catalog, times the
-- number of tenants (10,000 tenants: each index here is 10,000 pg_class rows, their
-- pg_attribute and pg_index rows, and one file each). An index stays only if a query or a
-- constraint needs it (docs/SCALING.md lists them). These two serve no query:

-- contacts (last_contacted_at, id): no list sorts or filters on last_contacted_at alone
-- (`sort` is created_at, updated_at, first_name or last_name); GET /contacts?inactive_days=N
-- and the inactive-lead job compare coalesce(last_contacted_at, created_at), which
-- contacts_inactive_since (V4) indexes. The column is only written (repo/inactivity.rs).
DROP INDEX IF EXISTS contacts_last_contacted;

-- contacts (score, id): created with the lead scores (V6) for a sort that does not exist:
-- no list sorts or filters by score (docs/API.md), and a score is read and written by the
-- contact's primary key (repo/scoring.rs). Dropping it also spares every score
-- recomputation an index update.
DROP INDEX IF EXISTS contacts_score;
