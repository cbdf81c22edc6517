//! The auth API, specified through HTTP: auth and users run for real, each
//! with its own database, against real Redis and PostgreSQL.

mod credentials;
mod helpers;
mod login;
mod purge;
mod refresh;
mod register;
mod revocation;
mod tokens;
