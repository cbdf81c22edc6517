//! Redis: one multiplexed, self-reconnecting connection per service.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Connects to Redis, or says which URL failed and how to point elsewhere.
pub async fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    let shown = crate::settings::redacted(url);
    let client = redis::Client::open(url)
        .map_err(|err| anyhow::anyhow!("SHOP_REDIS_URL={shown} is not a Redis URL: {err}"))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "cannot reach Redis at {shown} ({err}); start Redis or point SHOP_REDIS_URL at a running server"
            )
        })
}

/// True when Redis answers PING.
pub async fn ping(redis: &ConnectionManager) -> bool {
    let mut conn = redis.clone();
    let reply: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
    reply.is_ok()
}
