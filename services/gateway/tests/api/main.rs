//! The gateway, specified through HTTP: routing, what it hides, how it
//! answers when a service is down, and the offline Swagger UI.

mod docs;
mod helpers;
mod limits;
mod routing;
