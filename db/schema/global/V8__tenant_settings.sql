-- Issue 15: tenant settings (owned by tenant-service) and the inactive-lead schedule (owned by
-- contact-service).

-- One row per tenant that changed a setting; a tenant without a row has the defaults
-- (GET answers them with the tenant's created_at as version).
CREATE TABLE tenant_settings (
    tenant_id                TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    -- Days without contact after which a lead/prospect is inactive; NULL = the job is off.
    inactive_lead_days       INTEGER CHECK (inactive_lead_days BETWEEN 1 AND 3650),
    -- opt_in: marketing only to contacts with granted consent; opt_out: unless withdrawn.
    marketing_consent_policy VARCHAR(10) NOT NULL DEFAULT 'opt_in'
                             CHECK (marketing_consent_policy IN ('opt_in', 'opt_out')),
    -- Reserved for the trash feature: days a deleted record stays restorable.
    trash_retention_days     INTEGER NOT NULL DEFAULT 30 CHECK (trash_retention_days BETWEEN 1 AND 3650),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The daily inactive-lead job: one row per tenant with the job on (written by tenant-service
-- in the transaction that turns the setting on, removed when it is turned off), claimed by
-- contact-service's poll loop with FOR UPDATE SKIP LOCKED (replicas run each tenant's job
-- once). The due index keeps a poll to one index probe however many tenants exist.
CREATE TABLE inactive_lead_schedule (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    due_at      TIMESTAMPTZ NOT NULL,
    -- Failed runs in a row (reset by a success); retried with back-off.
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_run_at TIMESTAMPTZ,
    last_error  TEXT,
    -- Contacts published by the last successful run.
    last_found  INTEGER
);
CREATE INDEX inactive_lead_schedule_due ON inactive_lead_schedule (due_at);
