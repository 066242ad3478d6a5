-- Single tokens revoked before they expire (issue 12 item 19: logout ends the access token it
-- was made with, not only the refresh token). auth-service inserts the token's jti in the
-- logout transaction; every service keeps the live rows in memory (crm_web::RevocationGuard:
-- polled on revoked_at, woken by user.logged_out) and refuses that token with 401
-- TOKEN_REVOKED. A row matters only until the token expires: expired rows are skipped by the
-- readers and deleted by auth-service.
CREATE TABLE revoked_tokens (
    jti        TEXT        PRIMARY KEY,                  -- the token's ULID
    tenant_id  TEXT        NOT NULL,
    user_id    INTEGER     NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,                     -- the token's exp: the row's end
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX revoked_tokens_revoked ON revoked_tokens (revoked_at);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
