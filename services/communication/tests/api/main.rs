//! communication-service API tests: real HTTP, Postgres, NATS (JetStream consumers) and an
//! SMTP server in the test; mock clients of auth, contact and deal services except in
//! `real_services`.

mod activities;
mod attachments;
mod automation;
mod consumers;
mod emails;
mod etags;
mod helpers;
mod input;
mod merge;
mod integrity;
mod notes;
mod real_services;
mod reports;
mod tasks;
mod templates;
mod visibility;
mod webhooks;
