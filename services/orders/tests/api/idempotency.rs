use serde_json::{Value, json};

use crate::helpers::{Options, TestShop, assert_problem, items};

async fn place(
    shop: &TestShop,
    base: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    shop.http
        .post(format!("{base}/orders"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn a_retry_with_the_same_key_returns_the_first_answer_and_creates_nothing() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let body = json!([{ "items": items(&[(&products[0], 2)]) }]);

    let first = place(&shop, &shop.gateway, &token, "key-1", &body).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let retry = place(&shop, &shop.gateway, &token, "key-1", &body).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotency-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.expect("json"), first);

    assert_eq!(shop.orders_db.count("orders").await, 1);
    assert_eq!(shop.stock(&products[0]).await, 8);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    place(
        &shop,
        &shop.gateway,
        &token,
        "key-2",
        &json!([{ "items": items(&[(&products[0], 1)]) }]),
    )
    .await;
    let other = place(
        &shop,
        &shop.gateway,
        &token,
        "key-2",
        &json!([{ "items": items(&[(&products[0], 3)]) }]),
    )
    .await;
    assert_problem(other, 422).await;
    assert_eq!(shop.stock(&products[0]).await, 9);
}

#[tokio::test]
async fn a_failed_request_does_not_burn_its_key() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[1]).await;
    let body = json!([{ "items": items(&[(&products[0], 2)]) }]);
    assert_problem(
        place(&shop, &shop.gateway, &token, "key-3", &body).await,
        409,
    )
    .await;
    shop.http
        .patch(shop.url(&format!("/products/{}", products[0])))
        .bearer_auth(&shop.admin)
        .header("if-match", "\"1\"")
        .json(&json!({"stock": 5}))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        place(&shop, &shop.gateway, &token, "key-3", &body)
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn concurrent_retries_on_two_replicas_create_one_order() {
    let shop = TestShop::spawn_with(Options {
        replicas: 2,
        ..Options::default()
    })
    .await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[100]).await;
    let body = json!([{ "items": items(&[(&products[0], 1)]) }]);
    let attempts = (0..10).map(|i| place(&shop, &shop.orders[i % 2], &token, "key-4", &body));
    let responses = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    assert_eq!(shop.orders_db.count("orders").await, 1);
    assert_eq!(shop.stock(&products[0]).await, 99);
}

#[tokio::test]
async fn keys_belong_to_their_user() {
    let shop = TestShop::spawn().await;
    let (_, alice) = shop.customer().await;
    let (_, bob) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let body = json!([{ "items": items(&[(&products[0], 1)]) }]);
    assert_eq!(
        place(&shop, &shop.gateway, &alice, "shared", &body)
            .await
            .status(),
        201
    );
    let bobs = place(&shop, &shop.gateway, &bob, "shared", &body).await;
    assert_eq!(bobs.status(), 201);
    assert!(bobs.headers().get("idempotency-replayed").is_none());
    assert_eq!(shop.orders_db.count("orders").await, 2);
}

/// Leaves a claim on `key` as a request that died before answering would.
async fn dead_claim(shop: &TestShop, user: uuid::Uuid, key: &str, body: &Value, age_secs: u32) {
    let fingerprint = orders::idempotency::fingerprint(body);
    shop.orders_db
        .execute(&format!(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, claim_id, claimed_at)
             VALUES ('{user}', '{key}', '{fingerprint}', gen_random_uuid(),
                     now() - interval '{age_secs} seconds')"
        ))
        .await;
}

#[tokio::test]
async fn a_key_whose_request_died_is_taken_over_once_its_lease_lapses() {
    let shop = TestShop::spawn_with(Options {
        orders: orders::OrdersArgs {
            idempotency_lease_secs: 1,
            ..orders::OrdersArgs::default()
        },
        ..Options::default()
    })
    .await;
    let (user, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let body = json!([{ "items": items(&[(&products[0], 1)]) }]);
    dead_claim(&shop, user, "died-1", &body, 0).await;

    let retry = place(&shop, &shop.gateway, &token, "died-1", &body).await;
    assert_eq!(retry.status(), 201);
    let again = place(&shop, &shop.gateway, &token, "died-1", &body).await;
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    assert_eq!(shop.orders_db.count("orders").await, 1);
    assert_eq!(shop.stock(&products[0]).await, 9);
}

#[tokio::test]
async fn a_retry_while_the_first_request_still_runs_is_409_with_retry_after() {
    let shop = TestShop::spawn().await;
    let (user, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let body = json!([{ "items": items(&[(&products[0], 1)]) }]);
    dead_claim(&shop, user, "running-1", &body, 0).await;

    let retry = place(&shop, &shop.gateway, &token, "running-1", &body).await;
    let retry_after: u64 = retry.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_problem(retry, 409).await;
    assert_eq!(shop.orders_db.count("orders").await, 0);
    assert_eq!(shop.stock(&products[0]).await, 10);
}

#[tokio::test]
async fn a_request_whose_claim_was_taken_over_cannot_store_its_answer() {
    use sea_orm::ConnectionTrait;
    use secrecy::ExposeSecret;
    let shop = TestShop::spawn().await;
    let user = uuid::Uuid::now_v7();
    let body = json!([]);
    let db = sea_orm::Database::connect(shop.orders_db.url.expose_secret())
        .await
        .expect("connect");
    let orders::idempotency::Claim::Fresh(first) =
        orders::idempotency::claim(&db, user, "k", "fp", std::time::Duration::from_secs(0))
            .await
            .expect("claim")
    else {
        panic!("a new key is fresh");
    };
    let orders::idempotency::Claim::Fresh(second) =
        orders::idempotency::claim(&db, user, "k", "fp", std::time::Duration::from_secs(0))
            .await
            .expect("claim")
    else {
        panic!("a lapsed claim is taken over");
    };
    assert_ne!(first, second);

    let late = db
        .execute(orders::idempotency::completion(
            user,
            "k",
            first,
            201,
            body.clone(),
        ))
        .await
        .expect_err("the first request lost its claim");
    assert!(orders::idempotency::is_claim_lost(&late), "{late}");
    db.execute(orders::idempotency::completion(
        user, "k", second, 201, body,
    ))
    .await
    .expect("the new claimant completes");
}
