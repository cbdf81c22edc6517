//! The platform's database plumbing against a real PostgreSQL.

mod restart;
mod writes;
