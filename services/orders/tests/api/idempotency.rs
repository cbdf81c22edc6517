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

    assert_eq!(shop.count(&shop.orders_db, "orders").await, 1);
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
    assert_eq!(shop.count(&shop.orders_db, "orders").await, 1);
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
    assert_eq!(shop.count(&shop.orders_db, "orders").await, 2);
}
