-- Issue 16 (S-fields): typed custom field definitions and lead scores.
--
-- Custom fields: the values stay in the `custom_fields` JSONB of contacts and companies; a
-- definition types one key of one entity. Once an entity has a definition, its writes are
-- validated against the definitions (unknown keys refused) by the service.
CREATE TABLE custom_field_definitions (
    id          SERIAL PRIMARY KEY,
    entity      VARCHAR(20) NOT NULL CHECK (entity IN ('contact', 'company')),
    key         VARCHAR(64) NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]*$'),
    label       VARCHAR(100) NOT NULL,
    field_type  VARCHAR(20) NOT NULL
                CHECK (field_type IN ('text', 'number', 'date', 'boolean', 'select', 'multi_select', 'url', 'email', 'currency')),
    -- The choices of select and multi_select (empty for the other types).
    options     TEXT[] NOT NULL DEFAULT '{}',
    required    BOOLEAN NOT NULL DEFAULT false,
    -- Display order in forms and CSV columns (then key).
    position    INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by  INTEGER NOT NULL,
    UNIQUE (entity, key)
);

-- Lead scores: the current score of a contact (recomputed from the rules and the signals
-- below whenever one of its signals arrives or it is written), filterable and sortable.
ALTER TABLE contacts
    ADD COLUMN score INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN score_updated_at TIMESTAMPTZ;
CREATE INDEX contacts_score ON contacts (score, id);

-- Per-tenant scoring rules. kind:
--   field_value    config {"field": "status"|"source"|"job_title"|"country"|"city"|"tags"|"cf.<key>",
--                          "equals": <value>} or {"field": .., "present": true}: points once
--   activity_count config {"window_days": n, "activity_type": optional, "max_count": n,
--                          "half_life_days": optional}: points per completed activity
--   email_opened / email_clicked: same config as activity_count, per open / click
-- half_life_days makes a signal's points decay (halved every half_life_days).
CREATE TABLE scoring_rules (
    id          SERIAL PRIMARY KEY,
    name        VARCHAR(100) NOT NULL,
    kind        VARCHAR(30) NOT NULL CHECK (kind IN ('field_value', 'activity_count', 'email_opened', 'email_clicked')),
    config      JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    points      INTEGER NOT NULL CHECK (points BETWEEN -1000 AND 1000),
    enabled     BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL: part of the default rule set seeded below.
    created_by  INTEGER
);

-- The engagement a score counts (from activity.logged, email.opened, email.clicked), one
-- row per event (event_id unique: a redelivered event is counted once).
CREATE TABLE contact_engagement (
    id          BIGSERIAL PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    kind        VARCHAR(30) NOT NULL CHECK (kind IN ('activity', 'email_opened', 'email_clicked')),
    -- The activity type (call, meeting, ...) for activities.
    detail      VARCHAR(50),
    event_id    TEXT NOT NULL UNIQUE,
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX contact_engagement_contact ON contact_engagement (contact_id, kind, occurred_at);

-- The default rule set every tenant starts with (existing tenants get it with this migration).
INSERT INTO scoring_rules (name, kind, config, points) VALUES
    ('Opened an email', 'email_opened', '{"window_days": 90, "max_count": 5, "half_life_days": 30}', 5),
    ('Clicked a link in an email', 'email_clicked', '{"window_days": 90, "max_count": 5, "half_life_days": 30}', 10),
    ('Completed activity', 'activity_count', '{"window_days": 30, "max_count": 10, "half_life_days": 14}', 3),
    ('Meeting held', 'activity_count', '{"window_days": 90, "activity_type": "meeting", "max_count": 3}', 10),
    ('Is a prospect', 'field_value', '{"field": "status", "equals": "prospect"}', 15),
    ('Has a job title', 'field_value', '{"field": "job_title", "present": true}', 5);
