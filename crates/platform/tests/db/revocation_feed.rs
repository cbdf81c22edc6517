use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::auth::{Claims, Revocations, Role};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use testkit::TcpProxy;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const REDIS: &str = "127.0.0.1:6379";

fn claims_with(jti: Uuid) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: Uuid::new_v4(),
        role: Role::Customer,
        jti,
        exp: now + 600,
        iat: now,
        iss: "test".into(),
        aud: "test".into(),
        sid: None,
    }
}

/// Publishes a token revocation on the feed only, not in the stored set that
/// the periodic reload reads, so only a live subscription can deliver it.
async fn publish_only(redis: &mut ConnectionManager, jti: Uuid) {
    let notice = serde_json::json!({
        "kind": "token",
        "jti": jti,
        "exp": chrono::Utc::now().timestamp() + 600,
    });
    let _: i64 = redis
        .publish(platform::revocation::CHANNEL, notice.to_string())
        .await
        .expect("publish");
}

async fn delivered_within(
    redis: &mut ConnectionManager,
    local: &Revocations,
    limit: Duration,
) -> bool {
    let jti = Uuid::new_v4();
    let started = Instant::now();
    while started.elapsed() < limit {
        publish_only(redis, jti).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if local.is_revoked(&claims_with(jti)) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_revocation_subscription_that_silently_stops_relaying_is_replaced() {
    let proxy = TcpProxy::start(REDIS).await.expect("proxy");
    let mut direct = platform::kv::connect(&format!("redis://{REDIS}"))
        .await
        .expect("redis");
    let local = Arc::new(Revocations::default());
    let shutdown = CancellationToken::new();
    let follower = tokio::spawn(platform::revocation::follow(
        format!("redis://{}", proxy.addr),
        direct.clone(),
        local.clone(),
        shutdown.clone(),
    ));
    assert!(
        delivered_within(&mut direct, &local, Duration::from_secs(5)).await,
        "the feed delivers while the connection relays"
    );

    proxy.freeze_open_connections();

    // The keepalive PING goes unanswered, the session is rebuilt on a new
    // connection, and publications arrive again.
    assert!(
        delivered_within(&mut direct, &local, Duration::from_secs(15)).await,
        "a revocation published after the freeze never arrived"
    );
    shutdown.cancel();
    follower.await.expect("the follower stops");
}
