//! The notifications service, specified against real RabbitMQ and a real SMTP
//! conversation with a sink on loopback: order, pace, and no mail lost or
//! sent twice when things fail.

mod api;
mod delivery;
mod failures;
mod helpers;
mod smtp_sink;
