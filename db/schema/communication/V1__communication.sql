-- communication-service: activities, email templates and tracking, tasks (seed 004 section 5),
-- plus what the API needs: activity status/direction/outcome, review flag, idempotency keys
-- of rows created by event consumers (`source_event_id`), rendered email content and counters.
-- Ids of other services' rows (contacts, companies, deals, users) are plain integers.

CREATE TABLE activities (
    id               SERIAL PRIMARY KEY,
    type             VARCHAR(50) NOT NULL CHECK (type IN ('email', 'call', 'meeting', 'note', 'task')),
    subject          VARCHAR(255) NOT NULL,
    description      TEXT,
    status           VARCHAR(20) NOT NULL DEFAULT 'completed' CHECK (status IN ('scheduled', 'completed', 'cancelled')),
    direction        VARCHAR(20) CHECK (direction IN ('inbound', 'outbound')),
    outcome          VARCHAR(50),
    -- "scheduled_at" in the API (the seed's column name is kept).
    due_date         TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    duration_minutes INTEGER CHECK (duration_minutes >= 0),
    contact_id       INTEGER,
    company_id       INTEGER,
    deal_id          INTEGER,
    owner_id         INTEGER,
    custom_fields    JSONB NOT NULL DEFAULT '{}',
    -- Requirement 4.3: partial data is kept and flagged for manual review.
    needs_review     BOOLEAN NOT NULL DEFAULT false,
    source_event_id  TEXT UNIQUE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by       INTEGER,
    -- When the interaction happened (or is planned): the timeline and list order.
    occurred_at      TIMESTAMPTZ GENERATED ALWAYS AS (coalesce(completed_at, due_date, created_at)) STORED
);
CREATE INDEX activities_occurred ON activities (occurred_at DESC, id DESC);
CREATE INDEX activities_created ON activities (created_at DESC, id DESC);
CREATE INDEX activities_contact ON activities (contact_id, occurred_at DESC) WHERE contact_id IS NOT NULL;
CREATE INDEX activities_company ON activities (company_id) WHERE company_id IS NOT NULL;
CREATE INDEX activities_deal ON activities (deal_id) WHERE deal_id IS NOT NULL;
CREATE INDEX activities_owner ON activities (owner_id, occurred_at DESC);

CREATE TABLE email_templates (
    id          SERIAL PRIMARY KEY,
    name        VARCHAR(255) NOT NULL,
    subject     VARCHAR(255) NOT NULL,
    body_html   TEXT NOT NULL,
    body_text   TEXT,
    category    VARCHAR(100),
    -- The variables the template uses, e.g. ["contact.first_name", "deal.title"].
    variables   JSONB NOT NULL DEFAULT '[]',
    is_active   BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by  INTEGER
);
CREATE UNIQUE INDEX email_templates_name_key ON email_templates (lower(name));

CREATE TABLE email_tracking (
    id              SERIAL PRIMARY KEY,
    activity_id     INTEGER REFERENCES activities(id) ON DELETE SET NULL,
    email_address   VARCHAR(255) NOT NULL,
    template_id     INTEGER REFERENCES email_templates(id) ON DELETE SET NULL,
    message_id      VARCHAR(255) UNIQUE,
    -- queued -> sent (handed to SMTP / the sink; delivered_at when accepted) -> opened -> clicked
    status          VARCHAR(50) NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'opened', 'clicked')),
    -- crm (POST /emails), invitation, password_reset (system emails: no body kept, no tracking)
    kind            VARCHAR(30) NOT NULL DEFAULT 'crm' CHECK (kind IN ('crm', 'invitation', 'password_reset')),
    contact_id      INTEGER,
    deal_id         INTEGER,
    sender_id       INTEGER,
    subject         VARCHAR(255) NOT NULL DEFAULT '',
    body_html       TEXT,
    body_text       TEXT,
    sent_at         TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ,
    opened_at       TIMESTAMPTZ,
    clicked_at      TIMESTAMPTZ,
    open_count      INTEGER NOT NULL DEFAULT 0,
    click_count     INTEGER NOT NULL DEFAULT 0,
    source_event_id TEXT UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX email_tracking_contact ON email_tracking (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX email_tracking_activity ON email_tracking (activity_id) WHERE activity_id IS NOT NULL;

CREATE TABLE tasks (
    id              SERIAL PRIMARY KEY,
    title           VARCHAR(255) NOT NULL,
    description     TEXT,
    type            VARCHAR(50) NOT NULL DEFAULT 'task' CHECK (type IN ('task', 'reminder', 'follow_up')),
    status          VARCHAR(50) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled')),
    priority        VARCHAR(20) NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    due_date        TIMESTAMPTZ,
    reminder_at     TIMESTAMPTZ,
    contact_id      INTEGER,
    deal_id         INTEGER,
    assigned_to     INTEGER NOT NULL,
    completed_at    TIMESTAMPTZ,
    custom_fields   JSONB NOT NULL DEFAULT '{}',
    source_event_id TEXT UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by      INTEGER,
    -- Keyset order of the task lists: tasks without a due date last (a far date, not
    -- 'infinity', which clients cannot represent).
    due_key         TIMESTAMPTZ GENERATED ALWAYS AS (coalesce(due_date, '9999-12-31 00:00:00+00'::timestamptz)) STORED
);
CREATE INDEX tasks_due ON tasks (due_key, id);
CREATE INDEX tasks_assigned_open ON tasks (assigned_to, due_key) WHERE status IN ('pending', 'in_progress');
CREATE INDEX tasks_reminder_open ON tasks (reminder_at) WHERE reminder_at IS NOT NULL AND status IN ('pending', 'in_progress');
CREATE INDEX tasks_contact ON tasks (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX tasks_deal ON tasks (deal_id) WHERE deal_id IS NOT NULL;
