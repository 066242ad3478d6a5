-- Issue 16, notes: free-form markdown written by a user about a contact, a company and/or a
-- deal (at least one). The author is the user who wrote it (set by the server, never
-- changed); ids of other services' rows are plain integers, like the other tables here.
-- `author_id` is the user's integer id (the platform's user ids are integers; the contract's
-- "user ulid" wording predates that).

CREATE TABLE notes (
    id          SERIAL PRIMARY KEY,
    -- Markdown, 1..100000 characters (checked by the service; the CHECK is the backstop).
    body        TEXT NOT NULL CHECK (char_length(body) BETWEEN 1 AND 100000),
    author_id   INTEGER NOT NULL,
    contact_id  INTEGER,
    company_id  INTEGER,
    deal_id     INTEGER,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- A note is always about something: erasing or deleting its last record deletes it.
    CONSTRAINT notes_linked CHECK (contact_id IS NOT NULL OR company_id IS NOT NULL OR deal_id IS NOT NULL)
);
-- The list (newest first) and the per-record lists, timelines and erasures. No index on the
-- author: `?author_id=` alone walks notes_created (every index is a relation per tenant).
CREATE INDEX notes_created ON notes (created_at DESC, id DESC);
CREATE INDEX notes_contact ON notes (contact_id, created_at DESC) WHERE contact_id IS NOT NULL;
CREATE INDEX notes_company ON notes (company_id, created_at DESC) WHERE company_id IS NOT NULL;
CREATE INDEX notes_deal ON notes (deal_id, created_at DESC) WHERE deal_id IS NOT NULL;
