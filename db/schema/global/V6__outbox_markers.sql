-- Issue 18 (Citus): pending events are signalled without triggers or NOTIFY.
-- crm_events::publish writes one marker row per transaction into outbox_pending, in the same
-- transaction as its events (on Citus: a coordinator-local table beside the tenant's tables on a
-- worker, committed together), and wakes the relays over NATS after the commit. Markers are
-- insert-only: concurrent writers of one tenant never wait on each other, and the relay deletes
-- the markers committed before it reads the outbox, so a marker committed later stays for the
-- next round (no lost wake-up between "delete" and "read").
ALTER TABLE outbox_pending DROP CONSTRAINT outbox_pending_pkey;
ALTER TABLE outbox_pending ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
CREATE INDEX outbox_pending_schema ON outbox_pending (schema_name);

-- The platform outbox is marked by publish_platform like a tenant's.
DROP TRIGGER IF EXISTS outbox_signal ON outbox;

-- Kept only because the events set's V1 (applied unchanged into every new tenant schema before
-- its V3 drops the trigger again) names it: it now writes a marker row and no longer notifies,
-- so tenant schemas not yet migrated past events V3 keep their events flowing meanwhile.
CREATE OR REPLACE FUNCTION outbox_signal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO platform.outbox_pending (schema_name) VALUES (TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
