//! Fixed-window counters in Redis, so a limit holds across replicas. While
//! Redis cannot be reached, each process counts on its own instead: a limit
//! then holds per replica rather than across them, and nobody is refused
//! service because the counters' store is away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Counts one attempt and opens the window on the first: one command for
/// Redis (the gateway runs it on every request), atomic as a script is.
static COUNT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local count = redis.call('INCR', KEYS[1])
        if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
        return {count, redis.call('TTL', KEYS[1])}
        ",
    )
});

/// What an allowed attempt leaves, for `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// The window's limit.
    pub limit: u64,
    /// Attempts left in the window.
    pub remaining: u64,
    /// Seconds until the window starts afresh.
    pub reset_secs: u64,
}

/// Counts events per key in Redis.
#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    prefix: Arc<str>,
    local: Arc<Mutex<LocalCounts>>,
}

/// The fallback: this process's own fixed windows.
#[derive(Default)]
struct LocalCounts {
    windows: HashMap<String, (u64, Instant)>,
}

/// Keys the fallback keeps before it sweeps out closed windows.
const LOCAL_SWEEP_AT: usize = 10_000;

impl LocalCounts {
    /// The open window of `key`: its count and when it closes.
    fn window(&mut self, key: &str) -> Option<(u64, Instant)> {
        let now = Instant::now();
        match self.windows.get(key) {
            Some(&(count, closes)) if closes > now => Some((count, closes)),
            Some(_) => {
                self.windows.remove(key);
                None
            }
            None => None,
        }
    }

    fn hit(&mut self, key: &str, window: Duration) {
        if self.windows.len() >= LOCAL_SWEEP_AT {
            let now = Instant::now();
            self.windows.retain(|_, (_, closes)| *closes > now);
        }
        let (count, closes) = self.window(key).unwrap_or((0, Instant::now() + window));
        self.windows.insert(key.to_owned(), (count + 1, closes));
    }
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
            local: Arc::default(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{{shop}}:{}:{key}", self.prefix)
    }

    fn local(&self) -> std::sync::MutexGuard<'_, LocalCounts> {
        // A panic while counting leaves counts, not a broken invariant.
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one attempt on `key` first and then decides, in one atomic
    /// step: any number of attempts at once meet the limit exactly as they
    /// would one by one. A 429 once this attempt is over `limit`; otherwise
    /// what is left of the window.
    pub async fn attempt(&self, key: &str, limit: Limit) -> Result<Allowance, ApiError> {
        let mut conn = self.redis.clone();
        let counted: Result<(u64, i64), _> = COUNT
            .key(self.key(key))
            .arg(limit.window_secs)
            .invoke_async(&mut conn)
            .await;
        let (count, retry_after) = match counted {
            Ok((count, ttl)) => (count, ttl.max(1) as u64),
            Err(err) => {
                tracing::warn!(%err, "rate limiter: Redis unavailable; counting in this process");
                let mut local = self.local();
                local.hit(key, Duration::from_secs(limit.window_secs));
                match local.window(key) {
                    Some((count, closes)) => (
                        count,
                        closes
                            .saturating_duration_since(Instant::now())
                            .as_secs()
                            .max(1),
                    ),
                    None => (1, 1),
                }
            }
        };
        if count > limit.max {
            return Err(ApiError::TooManyRequests {
                retry_after,
                limit: limit.max,
            });
        }
        Ok(Allowance {
            limit: limit.max,
            remaining: limit.max - count,
            reset_secs: retry_after,
        })
    }

    /// Forgets the events of `key` (after a success, say).
    pub async fn reset(&self, key: &str) -> Result<(), ApiError> {
        self.local().windows.remove(key);
        let mut conn = self.redis.clone();
        let deleted: Result<(), _> = redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await;
        if let Err(err) = deleted {
            tracing::warn!(%err, "rate limiter: Redis unavailable; the key's count stays there");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::LocalCounts;

    #[test]
    fn the_local_fallback_counts_within_a_window_and_forgets_after_it() {
        let mut counts = LocalCounts::default();
        counts.hit("k", Duration::from_millis(50));
        counts.hit("k", Duration::from_millis(50));
        assert_eq!(counts.window("k").map(|(n, _)| n), Some(2));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(counts.window("k"), None);
    }
}
