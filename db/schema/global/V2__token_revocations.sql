-- Immediate effect of role changes and deactivations (requirement 2.4). auth-service upserts a
-- row in the same transaction as the change; every service keeps the rows in memory
-- (crm_web::RevocationGuard: polled on changed_at, woken by user.* events) and refuses access
-- tokens issued before valid_after, or any token of a deactivated user.
CREATE TABLE token_revocations (
    tenant_id   TEXT        NOT NULL,                    -- ULID, no FK: rows outlive nothing important
    user_id     INTEGER     NOT NULL,                    -- id in the tenant's users table
    valid_after TIMESTAMPTZ NOT NULL,                    -- tokens issued before are refused
    deactivated BOOLEAN     NOT NULL DEFAULT false,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX token_revocations_changed ON token_revocations (changed_at);
