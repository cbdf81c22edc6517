use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Options, TestShop, assert_problem, items};

#[tokio::test]
async fn with_products_down_an_order_is_503_and_nothing_is_left_behind() {
    let shop = TestShop::spawn_with(Options {
        products_down: true,
        ..Options::default()
    })
    .await;
    let (_, token) = shop.customer().await;
    let body = json!([{ "items": items(&[(&Uuid::now_v7().to_string(), 1)]) }]);
    let response = shop
        .http
        .post(format!("{}/orders", shop.orders[0]))
        .bearer_auth(&token)
        .header("idempotency-key", "down-1")
        .json(&body)
        .send()
        .await
        .expect("sent");
    let problem = assert_problem(response, 503).await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("products")
    );
    assert_eq!(shop.orders_db.count("orders").await, 0);
    assert_eq!(
        shop.orders_db.count("idempotency_keys").await,
        0,
        "the key may be retried"
    );
}

#[tokio::test]
async fn with_the_broker_down_orders_are_taken_and_their_events_wait() {
    let shop = TestShop::spawn_with(Options {
        broker_down: true,
        ..Options::default()
    })
    .await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    shop.order(&token, &[(&products[0], 1)]).await;
    assert_eq!(
        shop.orders_db
            .count("outbox WHERE event_type = 'order.created' AND published_at IS NULL")
            .await,
        1
    );
}
