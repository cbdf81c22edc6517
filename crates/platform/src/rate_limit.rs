//! Fixed-window counters in Redis, so a limit holds across replicas.

use std::sync::Arc;

use redis::aio::ConnectionManager;

use crate::error::ApiError;

/// A limit: at most `max` events per `window_secs` for one key.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Events allowed per window.
    pub max: u64,
    /// Window length in seconds.
    pub window_secs: u64,
}

/// Counts events per key in Redis.
#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RateLimiter {
    /// A limiter whose keys start with `prefix`. The prefix must name the
    /// deployment (its database, say): limits of two deployments sharing one
    /// Redis must not count each other's failures.
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{{shop}}:{}:{key}", self.prefix)
    }

    /// A 429 when `key` has used up `limit` in the current window.
    pub async fn check(&self, key: &str, limit: Limit) -> Result<(), ApiError> {
        let mut conn = self.redis.clone();
        let (count, ttl): (Option<u64>, i64) = redis::pipe()
            .get(self.key(key))
            .ttl(self.key(key))
            .query_async(&mut conn)
            .await
            .map_err(|err| {
                ApiError::ServiceUnavailable(format!("rate limiter unavailable: {err}"))
            })?;
        if count.unwrap_or(0) >= limit.max {
            return Err(ApiError::TooManyRequests {
                retry_after: ttl.max(1) as u64,
                limit: limit.max,
            });
        }
        Ok(())
    }

    /// Counts one event for `key`, starting a window if none is open.
    pub async fn hit(&self, key: &str, limit: Limit) -> Result<(), ApiError> {
        let mut conn = self.redis.clone();
        let _: (u64, bool) = redis::pipe()
            .atomic()
            .incr(self.key(key), 1u64)
            .expire(self.key(key), limit.window_secs as i64)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|err| {
                ApiError::ServiceUnavailable(format!("rate limiter unavailable: {err}"))
            })?;
        Ok(())
    }

    /// Forgets the events of `key` (after a success, say).
    pub async fn reset(&self, key: &str) -> Result<(), ApiError> {
        let mut conn = self.redis.clone();
        let _: () = redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await
            .map_err(|err| {
                ApiError::ServiceUnavailable(format!("rate limiter unavailable: {err}"))
            })?;
        Ok(())
    }
}
