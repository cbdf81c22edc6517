//! Redis cache-aside for versioned records.
//!
//! Entries are stored as `<version>|<json>`, and a write only lands if the
//! cached version is older: a reader that loaded a row before a change and
//! fills the cache after it cannot put the old version back. Writers store
//! the new version after commit, so a read that starts after a write has
//! returned never sees the old one. When Redis is slow or down, the cache
//! steps aside for a moment and callers read the database.
//!
//! What a change writes (a new version, a deletion, a new list generation)
//! is never skipped: if Redis does not take it, it is retried in the
//! background until it does, and meanwhile this process reads the database
//! for what it concerns. Other replicas can see the old entry only while
//! Redis is unreachable from the writer and reachable from them, and for at
//! most a retry interval after it answers again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use uuid::Uuid;

/// How long one cache call may take before it counts as a miss.
const CALL_TIMEOUT: Duration = Duration::from_millis(100);
/// How long the cache is skipped after a failure.
const BACKOFF_MS: i64 = 1000;
/// How long a retried write may take: longer than a read may, since nobody waits on it.
const RETRY_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest pause between two retries of a write Redis did not take.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// The version a deletion is stored under: newer than any real version.
const GONE: i64 = i64::MAX;

/// What the cache holds for an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The record's version and JSON.
    Present(i64, String),
    /// The record was deleted.
    Gone,
}

/// A cache of JSON records by id, guarded by version.
#[derive(Clone)]
pub struct VersionedCache {
    redis: ConnectionManager,
    prefix: &'static str,
    ttl_secs: u64,
    skip_until_ms: Arc<AtomicI64>,
    put: Arc<Script>,
    script_loaded: Arc<AtomicBool>,
    unsent: Arc<Unsent>,
}

/// Entries written after a change that Redis has not taken yet, newest
/// version per id, and whether a task is retrying them.
#[derive(Default)]
struct Unsent {
    records: Mutex<HashMap<Uuid, (i64, String)>>,
    retrying: AtomicBool,
}

impl Unsent {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (i64, String)>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, records: &[(Uuid, i64, String)]) {
        let mut unsent = self.lock();
        for (id, version, json) in records {
            let newer = unsent.get(id).is_none_or(|(held, _)| held < version);
            if newer {
                unsent.insert(*id, (*version, json.clone()));
            }
        }
    }

    fn snapshot(&self) -> Vec<(Uuid, i64, String)> {
        self.lock()
            .iter()
            .map(|(id, (version, json))| (*id, *version, json.clone()))
            .collect()
    }

    /// Forgets what was sent, unless a newer version arrived meanwhile.
    fn sent(&self, records: &[(Uuid, i64, String)]) {
        let mut unsent = self.lock();
        for (id, version, _) in records {
            if unsent.get(id).is_some_and(|(held, _)| held == version) {
                unsent.remove(id);
            }
        }
    }
}

impl std::fmt::Debug for VersionedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionedCache")
            .field("prefix", &self.prefix)
            .finish()
    }
}

// KEYS[1]: the entry; ARGV[1]: version; ARGV[2]: value; ARGV[3]: ttl.
const PUT_IF_NEWER: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^(%d+)|'))
  if version and version >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return 1
";

impl VersionedCache {
    /// A cache whose keys start with `prefix`, entries living `ttl_secs`.
    pub fn new(redis: ConnectionManager, prefix: &'static str, ttl_secs: u64) -> Self {
        Self {
            redis,
            prefix,
            ttl_secs,
            skip_until_ms: Arc::default(),
            put: Arc::new(Script::new(PUT_IF_NEWER)),
            script_loaded: Arc::default(),
            unsent: Arc::default(),
        }
    }

    fn key(&self, id: Uuid) -> String {
        format!("{{shop}}:{}:{id}", self.prefix)
    }

    fn available(&self) -> bool {
        chrono::Utc::now().timestamp_millis() >= self.skip_until_ms.load(Ordering::Relaxed)
    }

    fn failed(&self, err: &dyn std::fmt::Display) {
        let until = chrono::Utc::now().timestamp_millis() + BACKOFF_MS;
        let before = self.skip_until_ms.swap(until, Ordering::Relaxed);
        if before < chrono::Utc::now().timestamp_millis() {
            tracing::warn!(cache = self.prefix, %err, "cache unavailable; reading the database");
        }
        metrics::counter!("cache_failures_total", "cache" => self.prefix).increment(1);
    }

    fn decode(raw: &str) -> Option<Cached> {
        let (version, value) = raw.split_once('|')?;
        match version.parse::<i64>().ok()? {
            GONE => Some(Cached::Gone),
            version => Some(Cached::Present(version, value.to_owned())),
        }
    }

    /// The cached entries for `ids`, in order; `None` for a miss (or when Redis is away).
    pub async fn get_many(&self, ids: &[Uuid]) -> Vec<Option<Cached>> {
        if ids.is_empty() || !self.available() {
            return vec![None; ids.len()];
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(*id)).collect();
        let mut conn = self.redis.clone();
        let mut mget = redis::cmd("MGET");
        mget.arg(&keys);
        let call = mget.query_async::<Vec<Option<String>>>(&mut conn);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(values)) => {
                let unsent = self.unsent.lock();
                let entries: Vec<Option<Cached>> = values
                    .into_iter()
                    .zip(ids)
                    .map(|(value, id)| {
                        // Redis may still hold what a change here replaced.
                        if unsent.contains_key(id) {
                            return None;
                        }
                        value.as_deref().and_then(Self::decode)
                    })
                    .collect();
                drop(unsent);
                let hits = entries.iter().filter(|e| e.is_some()).count() as u64;
                metrics::counter!("cache_hits_total", "cache" => self.prefix).increment(hits);
                metrics::counter!("cache_misses_total", "cache" => self.prefix)
                    .increment(ids.len() as u64 - hits);
                entries
            }
            Ok(Err(err)) => {
                self.failed(&err);
                vec![None; ids.len()]
            }
            Err(_) => {
                self.failed(&"timed out");
                vec![None; ids.len()]
            }
        }
    }

    /// The cached entry for `id`.
    pub async fn get(&self, id: Uuid) -> Option<Cached> {
        self.get_many(&[id]).await.pop().flatten()
    }

    /// Stores records `(id, version, json)` read from the database, each only
    /// if newer than what is cached; skipped when Redis is away.
    pub async fn put_many(&self, records: &[(Uuid, i64, String)]) {
        if records.is_empty() || !self.available() {
            return;
        }
        if let Err(err) = self.send(records, CALL_TIMEOUT).await {
            self.failed(&err);
        }
    }

    /// Stores what a change wrote, `(id, version, json)`: retried in the
    /// background until Redis takes it, so the old version cannot outlive
    /// the change for long.
    pub async fn replace_many(&self, records: &[(Uuid, i64, String)]) {
        if records.is_empty() {
            return;
        }
        if self.available() {
            match self.send(records, CALL_TIMEOUT).await {
                Ok(()) => return,
                Err(err) => self.failed(&err),
            }
        }
        self.unsent.add(records);
        self.retry_unsent();
    }

    /// Records that `ids` were deleted, like [`Self::replace_many`].
    pub async fn put_gone(&self, ids: &[Uuid]) {
        let records: Vec<(Uuid, i64, String)> =
            ids.iter().map(|id| (*id, GONE, String::new())).collect();
        self.replace_many(&records).await;
    }

    /// Runs the version-guarded writes of `records` in one pipeline.
    async fn send(&self, records: &[(Uuid, i64, String)], timeout: Duration) -> Result<(), String> {
        let mut pipe = redis::pipe();
        for (id, version, json) in records {
            pipe.invoke_script(
                self.put
                    .key(self.key(*id))
                    .arg(*version)
                    .arg(json)
                    .arg(self.ttl_secs),
            );
        }
        let mut conn = self.redis.clone();
        // A pipeline calls the script by its hash, which a fresh, restarted or
        // flushed Redis does not know: load it first, and again after any failure.
        if !self.script_loaded.load(Ordering::Relaxed) {
            let invocation = self.put.prepare_invoke();
            let load = invocation.load_async(&mut conn);
            match tokio::time::timeout(timeout, load).await {
                Ok(Ok(_)) => self.script_loaded.store(true, Ordering::Relaxed),
                Ok(Err(err)) => return Err(err.to_string()),
                Err(_) => return Err("timed out".into()),
            }
        }
        let call = pipe.query_async::<Vec<i64>>(&mut conn);
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => {
                self.script_loaded.store(false, Ordering::Relaxed);
                Err(err.to_string())
            }
            Err(_) => Err("timed out".into()),
        }
    }

    /// Starts a task that sends the unsent records until none is left
    /// (unless one is running already).
    fn retry_unsent(&self) {
        if self.unsent.retrying.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = self.clone();
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(100);
            loop {
                tokio::time::sleep(pause).await;
                let records = cache.unsent.snapshot();
                if records.is_empty() {
                    cache.unsent.retrying.store(false, Ordering::Release);
                    // A record added after the snapshot found the flag still
                    // set and left it to this task.
                    if cache.unsent.lock().is_empty()
                        || cache.unsent.retrying.swap(true, Ordering::AcqRel)
                    {
                        return;
                    }
                    continue;
                }
                match cache.send(&records, RETRY_TIMEOUT).await {
                    Ok(()) => {
                        cache.unsent.sent(&records);
                        pause = Duration::from_millis(100);
                    }
                    Err(err) => {
                        metrics::counter!("cache_failures_total", "cache" => cache.prefix)
                            .increment(1);
                        tracing::debug!(cache = cache.prefix, %err, "a cache write after a change is still waiting for Redis");
                        pause = (pause * 2).min(MAX_RETRY_PAUSE);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_to_present_or_gone() {
        assert_eq!(
            VersionedCache::decode("3|{\"a\":1}"),
            Some(Cached::Present(3, "{\"a\":1}".into()))
        );
        assert_eq!(
            VersionedCache::decode(&format!("{GONE}|")),
            Some(Cached::Gone)
        );
        assert_eq!(VersionedCache::decode("garbage"), None);
    }
}

/// A short-lived cache of computed answers (search and list pages), dropped
/// as a whole when the data behind them changes: every key carries a
/// generation number, and a change bumps it. A computation that began before
/// a change stores its answer under the old generation, where nobody looks.
/// Cloned with every request's state, so a clone is one reference count.
#[derive(Clone)]
pub struct GenerationalCache(Arc<Generations>);

struct Generations {
    redis: ConnectionManager,
    prefix: Box<str>,
    ttl_secs: u64,
    skip_until_ms: AtomicI64,
    get: Script,
    /// A change whose generation bump Redis has not taken yet (being retried).
    bump_unsent: AtomicBool,
    /// Changes counted while a bump is retried: one that comes while a retry
    /// is on the wire needs another bump after it.
    changes: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for GenerationalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationalCache")
            .field("prefix", &self.0.prefix)
            .finish()
    }
}

/// Least time a scope's generation counter is kept after its last change.
const SCOPE_GENERATION_SECS: u64 = 86_400;

// KEYS[1]: the generation counter; ARGV[1]: the entry key before the
// generation; ARGV[2]: after it. Both keys share one hash tag.
const GET_CURRENT: &str = r"
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ARGV[2])}
";

/// What a lookup found: the generation to store under, and the answer if cached.
#[derive(Debug)]
pub struct Lookup {
    scope: String,
    generation: Option<String>,
    /// The cached answer.
    pub hit: Option<String>,
}

impl Lookup {
    /// The generation the lookup saw; `None` when the cache is off or unreachable.
    pub fn generation(&self) -> Option<&str> {
        self.generation.as_deref()
    }
}

impl GenerationalCache {
    /// A cache whose entries start with `prefix` and live `ttl_secs` (0 turns it off).
    /// The prefix must name the data's owner (its database, say): answers of two
    /// deployments sharing one Redis must not mix.
    pub fn new(redis: ConnectionManager, prefix: &str, ttl_secs: u64) -> Self {
        Self(Arc::new(Generations {
            redis,
            prefix: prefix.into(),
            ttl_secs,
            skip_until_ms: AtomicI64::default(),
            get: Script::new(GET_CURRENT),
            bump_unsent: AtomicBool::default(),
            changes: std::sync::atomic::AtomicU64::default(),
        }))
    }

    /// Where `scope`'s answers live: the whole cache's for `""`, else one
    /// scope's (see [`Self::get_in`]).
    fn scoped(&self, scope: &str) -> String {
        if scope.is_empty() {
            format!("{{shop}}:{}", self.0.prefix)
        } else {
            format!("{{shop}}:{}:{scope}", self.0.prefix)
        }
    }

    fn generation_key(&self, scope: &str) -> String {
        format!("{}:generation", self.scoped(scope))
    }

    fn entry_key(&self, scope: &str, generation: &str, key: &str) -> String {
        format!("{}:{generation}:{key}", self.scoped(scope))
    }

    fn available(&self) -> bool {
        self.0.ttl_secs > 0
            // Until a change's bump lands, the current generation holds
            // answers from before it.
            && !self.0.bump_unsent.load(Ordering::Acquire)
            && chrono::Utc::now().timestamp_millis() >= self.0.skip_until_ms.load(Ordering::Relaxed)
    }

    fn failed(&self, err: &dyn std::fmt::Display) {
        let until = chrono::Utc::now().timestamp_millis() + BACKOFF_MS;
        // Never shortens a longer pause a failed scope invalidation asked for.
        let before = self.0.skip_until_ms.fetch_max(until, Ordering::Relaxed);
        if before < chrono::Utc::now().timestamp_millis() {
            tracing::warn!(cache = %self.0.prefix, %err, "cache unavailable; computing answers afresh");
        }
        metrics::counter!("cache_failures_total", "cache" => "lists").increment(1);
    }

    /// Looks `key` up in the current generation.
    pub async fn get(&self, key: &str) -> Lookup {
        self.get_in("", key).await
    }

    /// Looks `key` up among the answers of `scope` (one product's pages,
    /// say), which have a generation of their own: a change to one scope
    /// ([`Self::invalidate_in`]) leaves the other scopes' answers cached.
    pub async fn get_in(&self, scope: &str, key: &str) -> Lookup {
        let miss = Lookup {
            scope: scope.to_owned(),
            generation: None,
            hit: None,
        };
        if !self.available() {
            return miss;
        }
        let mut conn = self.0.redis.clone();
        let mut invocation = self.0.get.key(self.generation_key(scope));
        invocation
            .arg(format!("{}:", self.scoped(scope)))
            .arg(format!(":{key}"));
        let call = invocation.invoke_async::<(String, Option<String>)>(&mut conn);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok((generation, hit))) => {
                let counter = if hit.is_some() {
                    "cache_hits_total"
                } else {
                    "cache_misses_total"
                };
                metrics::counter!(counter, "cache" => "lists").increment(1);
                Lookup {
                    scope: scope.to_owned(),
                    generation: Some(generation),
                    hit,
                }
            }
            Ok(Err(err)) => {
                self.failed(&err);
                miss
            }
            Err(_) => {
                self.failed(&"timed out");
                miss
            }
        }
    }

    /// Stores `value` for `key` in the generation the lookup saw.
    pub async fn put(&self, lookup: &Lookup, key: &str, value: &str) {
        let Some(generation) = &lookup.generation else {
            return;
        };
        if !self.available() {
            return;
        }
        let mut conn = self.0.redis.clone();
        let mut set = redis::cmd("SET");
        set.arg(self.entry_key(&lookup.scope, generation, key))
            .arg(value)
            .arg("EX")
            .arg(self.0.ttl_secs);
        match tokio::time::timeout(CALL_TIMEOUT, set.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => self.failed(&err),
            Err(_) => self.failed(&"timed out"),
        }
    }

    /// Drops every cached answer (by moving to the next generation); retried
    /// in the background until Redis takes it.
    pub async fn invalidate(&self) {
        if self.0.ttl_secs == 0 {
            return;
        }
        self.0.changes.fetch_add(1, Ordering::AcqRel);
        if self.0.bump_unsent.load(Ordering::Acquire) {
            // The retry under way bumps after this change too.
            return;
        }
        if let Err(err) = self.bump(CALL_TIMEOUT).await {
            self.failed(&err);
            if !self.0.bump_unsent.swap(true, Ordering::AcqRel) {
                let cache = self.clone();
                tokio::spawn(async move { cache.retry_bump().await });
            }
        }
    }

    /// Drops the cached answers of `scope`. When Redis does not take the
    /// bump, this process stops reading the cache for one entry lifetime, by
    /// which time every answer from before the change has expired; other
    /// processes may serve such an answer until then.
    pub async fn invalidate_in(&self, scope: &str) {
        if self.0.ttl_secs == 0 {
            return;
        }
        let mut conn = self.0.redis.clone();
        let key = self.generation_key(scope);
        let mut bump = redis::pipe();
        // A scope's counter outlives its answers by far, so that a counter
        // that expired and starts again at 0 finds no answers left under 0.
        bump.atomic()
            .cmd("INCR")
            .arg(&key)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(SCOPE_GENERATION_SECS.max(self.0.ttl_secs * 100))
            .ignore();
        let sent = tokio::time::timeout(CALL_TIMEOUT, bump.query_async::<()>(&mut conn)).await;
        if !matches!(sent, Ok(Ok(()))) {
            let until = chrono::Utc::now().timestamp_millis() + self.0.ttl_secs as i64 * 1000;
            self.0.skip_until_ms.fetch_max(until, Ordering::Relaxed);
            metrics::counter!("cache_failures_total", "cache" => "lists").increment(1);
            tracing::warn!(cache = %self.0.prefix, scope, "could not drop a scope's cached answers; not reading the cache until they expire");
        }
    }

    async fn bump(&self, timeout: Duration) -> Result<(), String> {
        let mut conn = self.0.redis.clone();
        let mut incr = redis::cmd("INCR");
        incr.arg(self.generation_key(""));
        match tokio::time::timeout(timeout, incr.query_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    async fn retry_bump(&self) {
        let mut pause = Duration::from_millis(100);
        loop {
            tokio::time::sleep(pause).await;
            let seen = self.0.changes.load(Ordering::Acquire);
            match self.bump(RETRY_TIMEOUT).await {
                Ok(()) => {
                    self.0.bump_unsent.store(false, Ordering::Release);
                    if self.0.changes.load(Ordering::Acquire) == seen {
                        return;
                    }
                    // A change came meanwhile and may have left its bump to
                    // this task; go on, unless a new task took over.
                    if self.0.bump_unsent.swap(true, Ordering::AcqRel) {
                        return;
                    }
                    pause = Duration::from_millis(1);
                }
                Err(err) => {
                    tracing::debug!(cache = %self.0.prefix, %err, "a list cache bump is still waiting for Redis");
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
            }
        }
    }
}
