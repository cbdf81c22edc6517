//! The reviews API, specified through HTTP against real PostgreSQL, Redis
//! and RabbitMQ, beside a real products service; every test has its own
//! databases and broker namespace.

mod editing;
mod explain;
mod helpers;
mod ratings;
mod reading;
mod users;
mod verified;
mod writing;
