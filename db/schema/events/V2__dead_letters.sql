-- Events a consumer gave up on after max_deliver attempts, kept for inspection and replay.
-- One row per (consumer, event); parking the same event again refreshes it.
CREATE TABLE dead_letters (
    consumer  TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    subject   TEXT NOT NULL,
    payload   JSONB NOT NULL,
    error     TEXT NOT NULL,
    failed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
