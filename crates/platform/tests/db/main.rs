//! The platform's plumbing against a real PostgreSQL and Redis.

mod broker_frames;
mod consumer_lanes;
mod consumer_retries;
mod restart;
mod revocation_feed;
mod running_consumer;
mod writes;
