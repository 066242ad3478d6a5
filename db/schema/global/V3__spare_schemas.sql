-- Tenant schemas provisioned ahead of signups (tenant-service keeps a few ready): creating
-- every service's ~130 catalog relations takes ~100 ms on a small server, taking a spare
-- takes one row lock. A spare's id becomes the tenant's id; its schema is an ordinary tenant
-- schema, so the migration runner keeps it current like any other.
CREATE TABLE spare_schemas (
    tenant_id  TEXT PRIMARY KEY CHECK (length(tenant_id) = 26),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
