-- Issue 15: marketing consent, last contact and inactive leads.
--
-- Marketing consent (GDPR art. 7(1): the controller must be able to show that, when and how
-- consent was given; art. 7(3): withdrawing is as easy as giving). The current state is on
-- the contact (lists, batch lookups and the send-time check read one column); every change
-- is also a row of contact_consent_history, never updated or deleted while the contact
-- exists. 'unknown' = nothing recorded; the tenant's policy decides what that allows.
ALTER TABLE contacts
    ADD COLUMN marketing_consent VARCHAR(20) NOT NULL DEFAULT 'unknown'
        CHECK (marketing_consent IN ('granted', 'withdrawn', 'unknown')),
    ADD COLUMN consent_updated_at TIMESTAMPTZ,
    ADD COLUMN consent_source VARCHAR(100),
    -- Inactive leads: the start of the inactivity period (coalesce(last_contacted_at,
    -- created_at)) that contact.became_inactive was last published for. A later contact
    -- moves last_contacted_at forward (it only ever grows), which opens a new period.
    ADD COLUMN inactivity_notified_for TIMESTAMPTZ;

CREATE TABLE contact_consent_history (
    id         BIGSERIAL PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status     VARCHAR(20) NOT NULL CHECK (status IN ('granted', 'withdrawn')),
    previous   VARCHAR(20) NOT NULL CHECK (previous IN ('granted', 'withdrawn', 'unknown')),
    -- Where the consent was given or withdrawn: "web_form", "import", "unsubscribe", ...
    source     VARCHAR(100) NOT NULL,
    -- The user who recorded it; NULL when the platform did (an unsubscribe link).
    changed_by INTEGER,
    -- The event that caused it (email.unsubscribed), for the audit trail.
    event_id   TEXT,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX contact_consent_history_contact ON contact_consent_history (contact_id, changed_at DESC, id DESC);

-- GET /contacts?inactive_days=N and the daily inactive-lead job: contacts whose last contact
-- (or, never contacted, creation) is before a cut-off instant.
CREATE INDEX contacts_inactive_since ON contacts ((coalesce(last_contacted_at, created_at)), id);
