//! auth-service API tests against the real Postgres and NATS, with the real tenant-service
//! in the same process. One binary; every test has tenants of its own.

mod helpers;

mod audit;

mod jwt;
mod login;
mod register;
mod reset;
mod revocation;
mod tokens;
mod users;
mod issue12;
