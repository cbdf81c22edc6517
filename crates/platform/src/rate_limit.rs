//! Fixed-window counters in Redis, so a limit holds across replicas. While
//! Redis cannot be reached, each process counts on its own instead: a limit
//! then holds per replica rather than across them, and nobody is refused
//! service because the counters' store is away.
//!
//! Large budgets (the gateway's reads, say) are not counted one request at a
//! time: a process claims a small block of the shared count at once (never
//! more than the window has left) and admits that many before it asks Redis
//! again. A limit is never exceeded that way; at worst a client is refused a
//! few attempts early while another replica still holds unused credit.
//! Small budgets (failed logins, registrations) are counted one by one.

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

/// Claims a block of ARGV[2] attempts in the window of KEYS[1] (opening it
/// for ARGV[1] seconds) under a limit of ARGV[3]: returns how many of the
/// block the limit still allowed, the window's seconds left and the count.
/// One command for Redis, atomic as a script is.
static CLAIM: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local block = tonumber(ARGV[2])
        local count = redis.call('INCRBY', KEYS[1], block)
        if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
        local granted = math.max(0, math.min(block, tonumber(ARGV[3]) - (count - block)))
        return {granted, redis.call('TTL', KEYS[1]), count}
        ",
    )
});

/// Attempts claimed from the shared count and not yet used by this process.
struct Credit {
    left: u64,
    window_ends: Instant,
}

/// How many attempts of `limit` one claim takes: one for small budgets.
fn block_of(limit: Limit) -> u64 {
    (limit.max / 100).clamp(1, 16)
}

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
    credits: Arc<Mutex<HashMap<String, Credit>>>,
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
            credits: Arc::default(),
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

    fn credits(&self) -> std::sync::MutexGuard<'_, HashMap<String, Credit>> {
        self.credits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One attempt from this process's unused credit on `key`, if it has some.
    fn spend_credit(&self, key: &str, limit: Limit) -> Option<Allowance> {
        let now = Instant::now();
        let mut credits = self.credits();
        let credit = credits
            .get_mut(key)
            .filter(|c| c.window_ends > now && c.left > 0)?;
        credit.left -= 1;
        Some(Allowance {
            limit: limit.max,
            remaining: credit.left,
            reset_secs: credit.window_ends.duration_since(now).as_secs().max(1),
        })
    }

    fn keep_credit(&self, key: &str, left: u64, window: Duration) {
        let now = Instant::now();
        let mut credits = self.credits();
        if credits.len() >= LOCAL_SWEEP_AT {
            credits.retain(|_, credit| credit.window_ends > now);
        }
        credits.insert(
            key.to_owned(),
            Credit {
                left,
                window_ends: now + window,
            },
        );
    }

    /// Counts one attempt on `key` first and then decides, in one atomic
    /// step: any number of attempts at once meet the limit exactly as they
    /// would one by one. A 429 once this attempt is over `limit`; otherwise
    /// what is left of the window.
    pub async fn attempt(&self, key: &str, limit: Limit) -> Result<Allowance, ApiError> {
        if let Some(allowance) = self.spend_credit(key, limit) {
            return Ok(allowance);
        }
        let block = block_of(limit);
        let mut conn = self.redis.clone();
        let claimed: Result<(u64, i64, u64), _> = CLAIM
            .key(self.key(key))
            .arg(limit.window_secs)
            .arg(block)
            .arg(limit.max)
            .invoke_async(&mut conn)
            .await;
        let (granted, reset_secs, shared_left) = match claimed {
            Ok((granted, ttl, count)) => {
                (granted, ttl.max(1) as u64, limit.max.saturating_sub(count))
            }
            Err(err) => {
                tracing::warn!(%err, "rate limiter: Redis unavailable; counting in this process");
                let mut local = self.local();
                local.hit(key, Duration::from_secs(limit.window_secs));
                let (count, reset_secs) = match local.window(key) {
                    Some((count, closes)) => (
                        count,
                        closes
                            .saturating_duration_since(Instant::now())
                            .as_secs()
                            .max(1),
                    ),
                    None => (1, 1),
                };
                (
                    u64::from(count <= limit.max),
                    reset_secs,
                    limit.max.saturating_sub(count),
                )
            }
        };
        if granted == 0 {
            return Err(ApiError::TooManyRequests {
                retry_after: reset_secs,
                limit: limit.max,
            });
        }
        let spare = granted - 1;
        if spare > 0 {
            self.keep_credit(key, spare, Duration::from_secs(reset_secs));
        }
        Ok(Allowance {
            limit: limit.max,
            remaining: shared_left + spare,
            reset_secs,
        })
    }

    /// Forgets the events of `key` (after a success, say).
    pub async fn reset(&self, key: &str) -> Result<(), ApiError> {
        self.local().windows.remove(key);
        self.credits().remove(key);
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

    use super::{Limit, LocalCounts, block_of};

    #[test]
    fn small_budgets_are_counted_one_by_one_and_large_ones_in_small_blocks() {
        let per_minute = |max| Limit {
            max,
            window_secs: 60,
        };
        assert_eq!(block_of(per_minute(5)), 1);
        assert_eq!(block_of(per_minute(30)), 1);
        assert_eq!(block_of(per_minute(300)), 3);
        assert_eq!(block_of(per_minute(1200)), 12);
        assert_eq!(block_of(per_minute(1_000_000)), 16);
    }

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
