//! End-to-end tests of the whole platform (issue #8): each test runs the real `crm serve`
//! binary as a child process, with a database (and, where it stops them, a nats-server or
//! PostgreSQL) of its own and ports of its own, and drives it over HTTP like a frontend.
//! Tests run in parallel (nextest: one process per test; `cargo test`: one thread each).

mod harness;

mod audit_history;
mod automation_flow;
mod engagement;
mod event_contract;
mod logout;
mod merge;
mod name_cache;
mod nats_outage;
mod notes;
mod postgres_restart;
mod rate_limits;
mod read_replica;
mod roles;
mod two_tenants;
mod walkthrough;
