-- Issue 15, webhooks for integrators: endpoints subscribed to event types, and the durable
-- delivery queue. A delivery is a row with a due time (`next_attempt_at`), claimed with
-- FOR UPDATE SKIP LOCKED by the poll loop of any instance, retried with exponential back-off
-- and jitter for up to 3 days, then parked (`failed`); every attempt is recorded.

CREATE TABLE webhooks (
    id              SERIAL PRIMARY KEY,
    url             TEXT NOT NULL,
    description     TEXT,
    -- Event types ("deal.closed_won") and family wildcards ("contact.*", "*").
    events          JSONB NOT NULL DEFAULT '[]',
    -- The Standard Webhooks signing secret, `whsec_<base64>`: needed in clear to sign.
    secret          TEXT NOT NULL,
    -- After a rotation the previous secret also signs until then (receivers switch over).
    previous_secret            TEXT,
    previous_secret_expires_at TIMESTAMPTZ,
    -- active | disabled (by an admin, or after failing without a success for days)
    status          VARCHAR(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    disabled_at     TIMESTAMPTZ,
    disabled_reason TEXT,
    -- First failed attempt since the last success (NULL while healthy).
    failing_since   TIMESTAMPTZ,
    -- Made for an automation rule's `{"type":"webhook","url":...}` action (no subscriptions).
    for_rules       BOOLEAN NOT NULL DEFAULT false,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by      INTEGER
);
CREATE INDEX webhooks_active ON webhooks (id) WHERE status = 'active';

-- pending (due at next_attempt_at) -> succeeded | pending again (retry) -> failed (parked
-- after the retry window, or when the webhook was disabled); redelivery makes it pending.
CREATE TABLE webhook_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    -- Idempotency: the event id for subscriptions, the caller's key for rule actions.
    dedupe_key       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       VARCHAR(100) NOT NULL,
    -- The envelope as published, the exact bytes that are signed and sent.
    body             TEXT NOT NULL,
    status           VARCHAR(20) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    -- Start of the retry window (reset by a redelivery).
    window_start     TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_attempt_at  TIMESTAMPTZ,
    response_status  INTEGER,
    latency_ms       INTEGER,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (webhook_id, dedupe_key)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (webhook_id, id DESC);

-- Every attempt of a delivery: status code, latency, error, a short excerpt of the answer.
CREATE TABLE webhook_attempts (
    delivery_id      BIGINT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt          INTEGER NOT NULL,
    attempted_at     TIMESTAMPTZ NOT NULL,
    response_status  INTEGER,
    latency_ms       INTEGER NOT NULL,
    error            TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
