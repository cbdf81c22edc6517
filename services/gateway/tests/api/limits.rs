use platform::auth::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestGateway;

async fn read(gw: &TestGateway, token: &str) -> reqwest::Response {
    gw.http
        .get(gw.url("/auth/jwks"))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
}

async fn get_orders(
    gw: &TestGateway,
    token: Option<&str>,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut request = gw.http.get(gw.url("/orders"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.expect("sent")
}

#[tokio::test]
async fn reads_past_the_budget_are_429_with_retry_after_and_ratelimit_headers() {
    let gw = TestGateway::spawn_with(|edge| edge.limits.reads = 3).await;
    let token = gw.issuer.token(Uuid::now_v7(), Role::Customer);
    for left in [2, 1, 0] {
        let response = get_orders(&gw, Some(&token), None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-limit"], "3");
        assert_eq!(
            response.headers()["ratelimit-remaining"],
            left.to_string().as_str()
        );
    }
    let refused = get_orders(&gw, Some(&token), None).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after));
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    let hits = gw.echo_hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(hits, 3, "the refused request never reached the service");
}

#[tokio::test]
async fn each_token_subject_has_its_own_budget() {
    let gw = TestGateway::spawn_with(|edge| edge.limits.reads = 2).await;
    let alice = gw.issuer.token(Uuid::now_v7(), Role::Customer);
    let bob = gw.issuer.token(Uuid::now_v7(), Role::Customer);
    for _ in 0..2 {
        assert_eq!(get_orders(&gw, Some(&alice), None).await.status(), 200);
    }
    assert_eq!(get_orders(&gw, Some(&alice), None).await.status(), 429);
    assert_eq!(get_orders(&gw, Some(&bob), None).await.status(), 200);
}

#[tokio::test]
async fn twenty_requests_at_once_against_a_budget_of_five_get_five_through() {
    let gw = TestGateway::spawn_with(|edge| edge.limits.writes = 5).await;
    let token = gw.issuer.token(Uuid::now_v7(), Role::Customer);
    let writes = (0..20).map(|_| {
        gw.http
            .post(gw.url("/orders"))
            .bearer_auth(&token)
            .json(&json!([]))
            .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(writes)
        .await
        .into_iter()
        .map(|r| r.expect("sent").status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        15,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn registrations_are_limited_per_address() {
    let gw = TestGateway::spawn_with(|edge| edge.limits.registrations = 2).await;
    let register = || {
        gw.http
            .post(gw.url("/auth/register"))
            .json(&json!({"username": "x", "password": "y"}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            register().await.expect("sent").status(),
            200,
            "the echo answers"
        );
    }
    assert_eq!(register().await.expect("sent").status(), 429);
}

#[tokio::test]
async fn forwarded_addresses_count_only_through_a_trusted_proxy() {
    let untrusting = TestGateway::spawn_with(|edge| edge.limits.reads = 1).await;
    assert_eq!(
        get_orders(&untrusting, None, Some("198.51.100.1"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get_orders(&untrusting, None, Some("198.51.100.2"))
            .await
            .status(),
        429,
        "a client cannot buy a fresh budget with a forged header"
    );

    let behind_proxy = TestGateway::spawn_with(|edge| {
        edge.limits.reads = 1;
        edge.proxies =
            platform::client_address::TrustedProxies::parse("127.0.0.0/8").expect("cidr");
    })
    .await;
    let first = get_orders(&behind_proxy, None, Some("203.0.113.5, 198.51.100.1")).await;
    assert_eq!(first.status(), 200);
    let echoed: Value = first.json().await.expect("json");
    assert_eq!(
        echoed["forwarded_for"], "198.51.100.1",
        "the right-most untrusted address"
    );
    assert_eq!(
        get_orders(&behind_proxy, None, Some("198.51.100.2"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get_orders(&behind_proxy, None, Some("198.51.100.2"))
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn with_every_budget_off_nothing_is_counted() {
    let gw = TestGateway::spawn().await;
    let token = gw.issuer.token(Uuid::now_v7(), Role::Customer);
    for _ in 0..50 {
        let response = read(&gw, &token).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn two_replicas_claiming_large_budgets_in_blocks_never_exceed_them() {
    let shared = format!("replicas-{}", Uuid::now_v7().simple());
    let configure = |edge: &mut gateway::Edge| {
        edge.limits.reads = 300;
        edge.key_prefix = shared.clone();
    };
    let first = TestGateway::spawn_with(configure).await;
    let second = TestGateway::spawn_with(configure).await;
    let mut admitted = 0;
    for n in 0..400 {
        let replica = if n % 3 == 0 { &first } else { &second };
        if get_orders(replica, None, None).await.status() == 200 {
            admitted += 1;
        }
    }
    assert!(
        admitted <= 300,
        "{admitted} admitted against a budget of 300"
    );
    assert!(
        admitted >= 296,
        "{admitted}: unused credit costs a few at most"
    );
}
