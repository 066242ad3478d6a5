-- Issue 16 (tenant export): one row per export a tenant admin asked for. tenant-service's
-- export worker claims pending rows (and running rows whose lease ran out: a worker that died
-- mid-export) with FOR UPDATE SKIP LOCKED, so replicas build each archive once; the archive
-- itself is in the exports object store (EXPORTS_URL) under `storage_key`, removed with the
-- row when it expires.
CREATE TABLE tenant_exports (
    id           TEXT PRIMARY KEY CHECK (length(id) = 26),
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- pending -> running -> done | failed
    status       VARCHAR(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    requested_by INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_until  TIMESTAMPTZ,
    storage_key  TEXT,
    size_bytes   BIGINT,
    sha256       TEXT,
    error        TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ
);
-- The tenant's exports, newest first (status and the "one at a time" check).
CREATE INDEX tenant_exports_tenant ON tenant_exports (tenant_id, created_at DESC);
-- The worker's claim: unfinished exports only.
CREATE INDEX tenant_exports_unfinished ON tenant_exports (created_at) WHERE status IN ('pending', 'running');
