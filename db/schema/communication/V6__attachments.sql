-- Issue 16, files: attachments of a contact, a company, a deal and/or an activity (at least
-- one). The bytes are in the object store (`ATTACHMENTS_URL`: local files by default, any
-- S3-compatible store) under `storage_key` = `<tenant id>/<ulid>`; this row is the metadata.
-- The content type is the one sniffed from the bytes, never the client's. `uploaded_by` is
-- the user's integer id (the platform's user ids are integers).

CREATE TABLE attachments (
    id           SERIAL PRIMARY KEY,
    -- As uploaded, validated: 1..255 bytes of UTF-8, no path separators or control characters.
    file_name    TEXT NOT NULL CHECK (octet_length(file_name) BETWEEN 1 AND 255),
    content_type VARCHAR(255) NOT NULL,
    size_bytes   BIGINT NOT NULL CHECK (size_bytes >= 0),
    -- Hex SHA-256 of the bytes, computed while they were streamed to the store.
    sha256       CHAR(64) NOT NULL,
    storage_key  TEXT NOT NULL UNIQUE,
    uploaded_by  INTEGER NOT NULL,
    contact_id   INTEGER,
    company_id   INTEGER,
    deal_id      INTEGER,
    activity_id  INTEGER,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- A file is always about something: erasing or deleting its last record deletes it.
    CONSTRAINT attachments_linked CHECK (contact_id IS NOT NULL OR company_id IS NOT NULL OR deal_id IS NOT NULL OR activity_id IS NOT NULL)
);
-- The per-record lists (newest first) and the erasures.
CREATE INDEX attachments_created ON attachments (created_at DESC, id DESC);
CREATE INDEX attachments_contact ON attachments (contact_id, created_at DESC) WHERE contact_id IS NOT NULL;
CREATE INDEX attachments_company ON attachments (company_id, created_at DESC) WHERE company_id IS NOT NULL;
CREATE INDEX attachments_deal ON attachments (deal_id, created_at DESC) WHERE deal_id IS NOT NULL;
CREATE INDEX attachments_activity ON attachments (activity_id, created_at DESC) WHERE activity_id IS NOT NULL;

-- Objects to remove from the store, written in the same transaction as what makes them
-- garbage (a deleted or erased attachment: due at once), or before an upload starts (due
-- after a grace period; the upload's own transaction deletes the row when it commits). The
-- removal loop deletes due objects, then their rows, so a crash or a store outage at any
-- point leaves at worst a row here, retried, and never an attachment without its object.
CREATE TABLE attachment_removals (
    storage_key TEXT PRIMARY KEY,
    due_at      TIMESTAMPTZ NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attachment_removals_due ON attachment_removals (due_at);
