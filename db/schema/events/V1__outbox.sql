-- Event plumbing inside every tenant schema: the transactional outbox and the record of
-- events a consumer has already applied (idempotency by event id).
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

CREATE TRIGGER outbox_signal AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION platform.outbox_signal();

CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
