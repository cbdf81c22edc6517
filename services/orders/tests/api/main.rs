//! The orders API, specified through HTTP with real users, products and
//! orders services (and a gateway) against real PostgreSQL, Redis, RabbitMQ.

mod create;
mod failures;
mod helpers;
mod history;
mod holds;
mod idempotency;
mod oversell;
mod reads;
mod transitions;
