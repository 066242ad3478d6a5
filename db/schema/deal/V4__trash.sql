-- Issue 16 (trash): a deleted deal first goes to the trash, where it stays for the tenant's
-- trash_retention_days (tenant-service setting) before the purge job erases it; it can be
-- restored meanwhile. A row with deleted_at set is "in the trash": hidden from lists, the
-- board, forecasts, GET by id and lookups (the repository's WHERE clauses); its contacts,
-- stage history and references are kept.
--
-- deleted_by: the auth-service user id (an integer like owner_id / created_by; the issue's
-- contract wrote "user ulid" but user ids on this platform are integers, see JWT `sub`).
ALTER TABLE deals
    ADD COLUMN deleted_at TIMESTAMPTZ,
    ADD COLUMN deleted_by INTEGER;

-- The trash listing (newest deletion first, keyset on (deleted_at, id)) and the purge job
-- (deleted_at before a cut-off): only trashed rows are indexed.
CREATE INDEX deals_trash ON deals (deleted_at, id) WHERE deleted_at IS NOT NULL;
