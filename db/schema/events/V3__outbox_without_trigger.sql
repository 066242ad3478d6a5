-- Issue 18 (Citus): no trigger in a tenant schema. The outbox's pending marker and the relay's
-- wake-up are written by crm_events::publish itself (marker in the same transaction, wake-up
-- over NATS after commit); a trigger calling platform.outbox_signal() cannot run on a Citus
-- worker (no platform schema there) and its NOTIFY broke two-phase commit.
DROP TRIGGER IF EXISTS outbox_signal ON outbox;
