//! The plumbing every shop service shares, written once: settings, database
//! setup, the error type, the bearer-token extractor, the middleware stack,
//! keyset pagination, the transactional outbox and its relay, shutdown.

pub mod address;
pub mod auth;
pub mod broker;
pub mod bulk;
pub mod cache;
pub mod client_address;
pub mod consumer;
pub mod db;
pub mod email;
pub mod error;
pub mod extract;
pub mod http;
pub mod in_process;
pub mod inbox;
pub mod internal;
pub mod jobs;
pub mod kv;
pub mod metrics;
pub mod money;
pub mod openapi;
pub mod outbox;
pub mod pagination;
pub mod peer;
pub mod quantity;
pub mod rate_limit;
pub mod revocation;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod versioning;
pub mod writes;

pub use error::{ApiError, ApiResult, FieldError};
