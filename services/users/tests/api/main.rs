//! The users API, specified through HTTP against real PostgreSQL, Redis and
//! RabbitMQ; every test has its own database.

mod create;
mod delete;
mod errors;
mod events;
mod helpers;
mod list;
mod read;
mod roles;
mod update;
