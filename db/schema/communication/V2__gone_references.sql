-- Records of other services that are gone for good (a contact erased, a company or deal
-- deleted), as their events announced. The consumers drop every reference to them in the
-- same transaction, and rows written later (an event applied out of order, a request racing
-- the deletion) are checked against this table, so no reference to a gone record comes back.
CREATE TABLE gone_references (
    kind    VARCHAR(20) NOT NULL CHECK (kind IN ('contact', 'company', 'deal')),
    id      INTEGER NOT NULL,
    gone_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (kind, id)
);
-- Tasks have no company; the deletions below find their rows through these indexes.
CREATE INDEX IF NOT EXISTS email_tracking_deal ON email_tracking (deal_id) WHERE deal_id IS NOT NULL;
