//! deal-service API tests: real HTTP, Postgres and NATS; mock contact/auth clients except in
//! `real_services`, which runs the real contact-service and auth-service in process.

mod bad_input;
mod concurrency;
mod contacts;
mod deals;
mod etag;
mod helpers;
mod integrity;
mod lists;
mod money;
mod pipeline;
mod stages;
mod trash;
mod real_services;
