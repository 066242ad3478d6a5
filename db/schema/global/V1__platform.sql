-- Global platform tables, in schema "platform" (the runner sets the search path).

-- Trigram search (contact-service). In public, which every scoped search path ends with.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- Tenant registry (owned by tenant-service; read by every service through crm_tenant::TenantRegistry).
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY CHECK (length(id) = 26),           -- ULID
    name        VARCHAR(255) NOT NULL,
    subdomain   VARCHAR(63)  NOT NULL UNIQUE,
    schema_name VARCHAR(63)  NOT NULL UNIQUE,
    status      VARCHAR(20)  NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'suspended', 'pending')),
    created_at  TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ  NOT NULL DEFAULT now()
);

-- Invitations (owned by tenant-service). The token is stored only as a SHA-256 hash.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY CHECK (length(id) = 26),           -- ULID
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email       VARCHAR(254) NOT NULL,
    role        VARCHAR(20)  NOT NULL CHECK (role IN ('admin', 'manager', 'sales_rep', 'viewer')),
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ,
    invited_by  INTEGER,                                            -- user id in the tenant schema
    accepted_user_id INTEGER,                                       -- the user registered with it
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX invitations_tenant_created ON invitations (tenant_id, created_at DESC, id DESC);

-- Which migration version each (schema, migration set) is at: read in one query so that a
-- no-op check over thousands of tenant schemas costs milliseconds. The per-schema refinery
-- history tables stay the source of truth; this is the fast index over them.
CREATE TABLE schema_versions (
    schema_name   TEXT    NOT NULL,
    migration_set TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    applied_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, migration_set)
);

-- Platform-level events (tenant.created, tenant.deleted...): same shape as a tenant outbox.
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,                                   -- event ULID
    subject      TEXT NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX outbox_unpublished ON outbox (created_at, id) WHERE published_at IS NULL;

-- Schemas whose outbox has unpublished rows: the relay reads this instead of visiting
-- every tenant schema. Rows are added by a trigger on each outbox.
CREATE TABLE outbox_pending (
    schema_name TEXT PRIMARY KEY,
    since       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Security/throttling state that must hold across replicas (signup and login throttles).
CREATE TABLE rate_limits (
    bucket       TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    hits         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, window_start)
);

-- Signals the relay: one row per schema with pending events, and a NOTIFY at commit.
CREATE FUNCTION outbox_signal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO platform.outbox_pending (schema_name) VALUES (TG_TABLE_SCHEMA)
        ON CONFLICT (schema_name) DO NOTHING;
    PERFORM pg_notify('crm_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_signal AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_signal();
