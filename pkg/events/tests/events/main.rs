//! Outbox, relay and consumers against the real PostgreSQL (`crm_test`) and NATS
//! (`NATS_URL`). Each test has its own tenant, event types (subjects) and durable names, so
//! tests run in parallel on the shared `CRM` stream.

mod consumer;
mod helpers;
mod relay;
