//! Revoking access tokens everywhere at once: a revocation is stored in Redis
//! (until the tokens it covers would have expired) and published; every
//! process keeps the live set in memory, loaded at start and kept current
//! from the publications, so checking a token costs no round trip.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::Revocations;

/// The channel revocations are published on.
pub const CHANNEL: &str = "shop:revocations";
// One hash tag, so both keys live on one Redis Cluster slot.
const TOKENS_KEY: &str = "{shop}:revoked:tokens";
const USERS_KEY: &str = "{shop}:revoked:users";
/// How often every process re-reads the whole revocation set from Redis.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// How often the subscription is checked with a PING, and how long the answer
/// may take before the connection is taken for dead.
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a user-wide revocation is kept: longer than any access token lives.
pub const USER_RETENTION_SECS: i64 = 24 * 3600;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Notice {
    Token { jti: Uuid, exp: i64 },
    User { user_id: Uuid, at_ms: i64 },
}

/// Revokes one access token everywhere.
pub async fn revoke_token(
    redis: &ConnectionManager,
    local: &Revocations,
    jti: Uuid,
    exp: i64,
) -> redis::RedisResult<()> {
    local.revoke_token(jti, exp);
    let mut conn = redis.clone();
    let _: () = conn.zadd(TOKENS_KEY, jti.to_string(), exp).await?;
    publish(&mut conn, &Notice::Token { jti, exp }).await
}

/// Revokes every access token `user_id` holds now, everywhere.
pub async fn revoke_user(
    redis: &ConnectionManager,
    local: &Revocations,
    user_id: Uuid,
) -> redis::RedisResult<()> {
    let at_ms = chrono::Utc::now().timestamp_millis();
    local.revoke_user(user_id, at_ms);
    let mut conn = redis.clone();
    let _: () = conn.zadd(USERS_KEY, user_id.to_string(), at_ms).await?;
    publish(&mut conn, &Notice::User { user_id, at_ms }).await
}

/// When every token of `user_id` was last revoked (milliseconds since the
/// epoch), read from Redis itself rather than this process's copy.
pub async fn user_revoked_at(
    redis: &ConnectionManager,
    user_id: Uuid,
) -> redis::RedisResult<Option<i64>> {
    let mut conn = redis.clone();
    conn.zscore(USERS_KEY, user_id.to_string()).await
}

async fn publish(conn: &mut ConnectionManager, notice: &Notice) -> redis::RedisResult<()> {
    let payload = serde_json::to_string(notice).unwrap_or_default();
    let _: () = conn.publish(CHANNEL, payload).await?;
    Ok(())
}

/// Loads every live revocation from Redis into `local`, pruning expired ones.
pub async fn load(redis: &ConnectionManager, local: &Revocations) -> redis::RedisResult<()> {
    let mut conn = redis.clone();
    let now = chrono::Utc::now().timestamp();
    let horizon_ms = (now - USER_RETENTION_SECS) * 1000;
    let _: () = conn.zrembyscore(TOKENS_KEY, "-inf", now).await?;
    let _: () = conn.zrembyscore(USERS_KEY, "-inf", horizon_ms).await?;
    let tokens: Vec<(String, i64)> = conn
        .zrangebyscore_withscores(TOKENS_KEY, now, "+inf")
        .await?;
    for (jti, exp) in tokens {
        if let Ok(jti) = jti.parse() {
            local.revoke_token(jti, exp);
        }
    }
    let users: Vec<(String, i64)> = conn
        .zrangebyscore_withscores(USERS_KEY, horizon_ms, "+inf")
        .await?;
    for (user_id, at_ms) in users {
        if let Ok(user_id) = user_id.parse() {
            local.revoke_user(user_id, at_ms);
        }
    }
    Ok(())
}

async fn ping(sink: &mut redis::aio::PubSubSink) -> redis::RedisResult<()> {
    match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
        Ok(answer) => answer.map(drop),
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the revocation subscription did not answer a PING",
        ))),
    }
}

/// Keeps `local` current until `shutdown`: subscribes, then reloads (so nothing
/// published meanwhile is missed), then applies each publication; after a lost
/// connection it does the same again.
pub async fn follow(
    redis_url: String,
    redis: ConnectionManager,
    local: Arc<Revocations>,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let session = async {
            let client = redis::Client::open(redis_url.as_str())?;
            let (mut sink, mut messages) = client.get_async_pubsub().await?.split();
            sink.subscribe(CHANNEL).await?;
            load(&redis, &local).await?;
            let mut prune = tokio::time::interval(Duration::from_secs(60));
            // A subscription can die without a word (a half-open connection
            // after a network fault): reloading every few seconds bounds how
            // long a missed publication keeps a revoked token alive, and a
            // PING that goes unanswered ends the session so it is rebuilt.
            let mut reload = tokio::time::interval(RELOAD_EVERY);
            reload.reset();
            let mut keepalive = tokio::time::interval(PING_EVERY);
            keepalive.reset();
            loop {
                tokio::select! {
                    message = messages.next() => {
                        let Some(message) = message else { break };
                        let payload: String = message.get_payload().unwrap_or_default();
                        match serde_json::from_str::<Notice>(&payload) {
                            Ok(Notice::Token { jti, exp }) => local.revoke_token(jti, exp),
                            Ok(Notice::User { user_id, at_ms }) => local.revoke_user(user_id, at_ms),
                            Err(err) => tracing::warn!(%err, "ignoring a malformed revocation notice"),
                        }
                    }
                    _ = prune.tick() => local.prune(chrono::Utc::now().timestamp(), USER_RETENTION_SECS),
                    _ = reload.tick() => load(&redis, &local).await?,
                    _ = keepalive.tick() => ping(&mut sink).await?,
                    _ = shutdown.cancelled() => break,
                }
            }
            redis::RedisResult::Ok(())
        };
        match session.await {
            Ok(()) if shutdown.is_cancelled() => return,
            Ok(()) => failures = 0,
            Err(err) => {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(%err, "lost the revocation feed; reconnecting");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(250 * u64::from(failures.min(8)))) => {}
        }
    }
}
