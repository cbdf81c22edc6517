//! The products API, specified through HTTP against real PostgreSQL, Redis
//! and RabbitMQ; every test has its own database.

mod cache;
mod catalogue;
mod explain;
mod helpers;
mod locking;
mod reservations;
mod search;
