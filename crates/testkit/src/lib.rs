//! What the tests share, and only the tests (a dev-dependency everywhere):
//! a fresh database per test from a template, a stand-in for the auth
//! service's key set, a TCP proxy that can cut a dependency away, a client
//! for a service's API, and the assertions on problem answers.

mod assertions;
mod broker;
mod database;
mod issuer;
mod proxy;
mod service;

pub use assertions::assert_problem;
pub use broker::{publish_event, publish_events, remove_declared};
pub use database::{TestDatabase, server_url};
pub use issuer::TestIssuer;
pub use proxy::TcpProxy;
pub use service::{Api, service_settings, wait_healthy};
