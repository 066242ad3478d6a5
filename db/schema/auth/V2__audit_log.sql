-- The tenant's audit log (issue 16, "History"): one row per domain event of the tenant,
-- written by auth-service's durable consumer of every subject. Idempotent per event: the
-- event id is the key. Kept AUDIT_RETENTION_DAYS (the retention job deletes older rows).
CREATE TABLE audit_log (
    event_id    TEXT PRIMARY KEY,                       -- the envelope's ULID
    event_type  VARCHAR(100) NOT NULL,                  -- e.g. contact.updated
    resource    VARCHAR(50)  NOT NULL,                  -- the type's family: contact
    action      VARCHAR(50)  NOT NULL,                  -- the rest: updated
    resource_id VARCHAR(100),                           -- the record's id, as text (ids are integers or ULIDs)
    actor       VARCHAR(100),                           -- the envelope's actor: a user id, or signup / a service; NULL: the system (rules, jobs)
    actor_id    INTEGER,                                -- actor when it is a user id
    request_id  VARCHAR(128),                           -- X-Request-ID of the request that made the change
    occurred_at TIMESTAMPTZ  NOT NULL,                  -- the envelope's timestamp
    changes     JSONB,                                  -- {field: {old, new}} for updates that carry it
    data        JSONB        NOT NULL,                  -- the payload, secrets removed
    recorded_at TIMESTAMPTZ  NOT NULL DEFAULT now()
);
-- Newest first (the only order), and the filters of GET /audit.
CREATE INDEX audit_log_time ON audit_log (occurred_at DESC, event_id DESC);
CREATE INDEX audit_log_record ON audit_log (resource, resource_id, occurred_at DESC, event_id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, occurred_at DESC, event_id DESC);
