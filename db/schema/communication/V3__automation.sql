-- Issue 15, communication-service automation: task reminders, email sequences and their
-- enrollments, automation rules and their runs, unsubscribes. Every scheduled thing is a row
-- with a due time (`next_attempt_at`), claimed with FOR UPDATE SKIP LOCKED by the poll loop
-- of any instance, retried with back-off, parked after the limit, and visible through the API.

-- One reminder per task (its `reminder_at`), kept in step with the task by the task writes:
-- a changed `reminder_at` schedules it again, a cleared one or a closed task cancels it.
CREATE TABLE task_reminders (
    task_id         INTEGER PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    remind_at       TIMESTAMPTZ NOT NULL,
    status          VARCHAR(20) NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    sent_at         TIMESTAMPTZ
);
CREATE INDEX task_reminders_due ON task_reminders (next_attempt_at) WHERE status = 'scheduled';
-- Open tasks with a reminder still ahead are scheduled; reminders already past when this
-- version is installed are not sent late.
INSERT INTO task_reminders (task_id, remind_at, next_attempt_at)
    SELECT id, reminder_at, reminder_at FROM tasks
    WHERE reminder_at IS NOT NULL AND reminder_at > CURRENT_TIMESTAMP AND status IN ('pending', 'in_progress');

-- Reminder emails are system emails (to a user, not a contact); sequence and rule emails are
-- CRM emails marked as marketing (they carry the one-click unsubscribe, RFC 8058).
ALTER TABLE email_tracking DROP CONSTRAINT IF EXISTS email_tracking_kind_check;
ALTER TABLE email_tracking ADD CONSTRAINT email_tracking_kind_check CHECK (kind IN ('crm', 'invitation', 'password_reset', 'reminder'));
ALTER TABLE email_tracking ADD COLUMN marketing BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE sequences (
    id          SERIAL PRIMARY KEY,
    name        VARCHAR(255) NOT NULL,
    description TEXT,
    is_active   BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by  INTEGER
);
CREATE UNIQUE INDEX sequences_name_key ON sequences (lower(name));

-- The steps of a sequence, in order; each waits `delay_minutes` after the previous one
-- (the first after the enrollment). The API speaks `delay_hours`.
CREATE TABLE sequence_steps (
    sequence_id   INTEGER NOT NULL REFERENCES sequences(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL CHECK (position >= 1),
    template_id   INTEGER NOT NULL,
    delay_minutes INTEGER NOT NULL CHECK (delay_minutes >= 0),
    PRIMARY KEY (sequence_id, position)
);

CREATE TABLE sequence_enrollments (
    id              SERIAL PRIMARY KEY,
    sequence_id     INTEGER NOT NULL REFERENCES sequences(id) ON DELETE CASCADE,
    contact_id      INTEGER NOT NULL,
    deal_id         INTEGER,
    -- active -> completed (every step done) | stopped (unenrolled, contact deleted,
    -- unsubscribed, consent withdrawn)
    status          VARCHAR(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'stopped')),
    stop_reason     VARCHAR(30) CHECK (stop_reason IN ('unenrolled', 'contact_deleted', 'unsubscribed', 'consent_withdrawn', 'sequence_deleted')),
    enrolled_by     INTEGER,
    rule_id         INTEGER,
    source_event_id TEXT UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    stopped_at      TIMESTAMPTZ
);
-- A contact is in a sequence at most once at a time.
CREATE UNIQUE INDEX sequence_enrollments_active ON sequence_enrollments (sequence_id, contact_id) WHERE status = 'active';
CREATE INDEX sequence_enrollments_list ON sequence_enrollments (sequence_id, id DESC);
CREATE INDEX sequence_enrollments_contact ON sequence_enrollments (contact_id) WHERE status = 'active';

-- Each step of an enrollment, scheduled when the contact is enrolled (due times add up the
-- delays). A step is claimed only after the previous one is done, so they go out in order.
CREATE TABLE enrollment_steps (
    enrollment_id   INTEGER NOT NULL REFERENCES sequence_enrollments(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    template_id     INTEGER NOT NULL,
    status          VARCHAR(20) NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'sent', 'failed', 'skipped', 'cancelled')),
    due_at          TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    -- why a step was skipped: no_consent, no_email, template_inactive, ...
    reason          TEXT,
    email_id        INTEGER,
    done_at         TIMESTAMPTZ,
    PRIMARY KEY (enrollment_id, position)
);
CREATE INDEX enrollment_steps_due ON enrollment_steps (next_attempt_at) WHERE status = 'scheduled';

CREATE TABLE automation_rules (
    id            SERIAL PRIMARY KEY,
    name          VARCHAR(255) NOT NULL,
    description   TEXT,
    enabled       BOOLEAN NOT NULL DEFAULT true,
    trigger_event VARCHAR(100) NOT NULL,
    -- all | any
    match_mode    VARCHAR(3) NOT NULL DEFAULT 'all' CHECK (match_mode IN ('all', 'any')),
    conditions    JSONB NOT NULL DEFAULT '[]',
    actions       JSONB NOT NULL DEFAULT '[]',
    -- Rules seeded by the platform (`crm demo`): a stable key, so seeding twice changes nothing.
    seed_key      VARCHAR(100) UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by    INTEGER
);
CREATE UNIQUE INDEX automation_rules_name_key ON automation_rules (lower(name));
CREATE INDEX automation_rules_trigger ON automation_rules (trigger_event) WHERE enabled;

-- One run per (rule, triggering event): matched when the event is consumed, executed by the
-- poll loop. pending -> succeeded | failed (retrying, next_attempt_at set) -> parked (after
-- the attempt limit; POST /automation/runs/{id}/retry makes it pending again) |
-- loop_stopped (the event was caused by rules too many levels deep).
CREATE TABLE automation_runs (
    id              SERIAL PRIMARY KEY,
    rule_id         INTEGER NOT NULL REFERENCES automation_rules(id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      VARCHAR(100) NOT NULL,
    event           JSONB NOT NULL,
    depth           INTEGER NOT NULL DEFAULT 0,
    status          VARCHAR(20) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'parked', 'loop_stopped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    last_error      TEXT,
    -- what each action did, e.g. [{"type": "create_task", "task_id": 7}]
    results         JSONB NOT NULL DEFAULT '[]',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at     TIMESTAMPTZ,
    UNIQUE (rule_id, event_id)
);
CREATE INDEX automation_runs_due ON automation_runs (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX automation_runs_rule ON automation_runs (rule_id, id DESC);

-- How deep in a chain of rules an event is: the events a rule's actions publish are written
-- here with the run's depth + 1 (`event:<id>`), and the effects a rule causes in another
-- service (an updated contact or deal) by subject and record (`contact.updated:<id>`), taken
-- by the next such event. Rows expire after an hour.
CREATE TABLE automation_lineage (
    key        TEXT PRIMARY KEY,
    depth      INTEGER NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX automation_lineage_expiry ON automation_lineage (expires_at);

-- One-click unsubscribes (RFC 8058) from marketing emails; one row per email.
CREATE TABLE unsubscribes (
    email_id        INTEGER PRIMARY KEY,
    contact_id      INTEGER,
    email_address   VARCHAR(255) NOT NULL,
    unsubscribed_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Follow-up tasks for inactive leads (contact.became_inactive): at most one open per contact.
CREATE UNIQUE INDEX tasks_one_open_inactive_follow_up ON tasks (contact_id)
    WHERE type = 'follow_up' AND status IN ('pending', 'in_progress') AND (custom_fields->>'reason') = 'inactive_lead';
