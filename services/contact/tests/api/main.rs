//! contact-service API tests: real HTTP, Postgres and NATS; auth-service is a mock client.

mod companies;
mod contacts;
mod custom_fields;
mod engagement;
mod helpers;
mod import;
mod merge;
mod issue12;
mod scoring;
mod search;
mod tags;
mod trash;
