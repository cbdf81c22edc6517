use platform::auth::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestShop, assert_problem, items};

#[tokio::test]
async fn an_order_copies_names_and_prices_and_holds_stock() {
    let shop = TestShop::spawn().await;
    let (user_id, token) = shop.customer().await;
    let products = shop.products(&[10, 10]).await;

    let order = shop
        .order(&token, &[(&products[0], 2), (&products[1], 1)])
        .await;

    assert_eq!(order["status"], "created");
    assert_eq!(order["user_id"], user_id.to_string());
    assert_eq!(order["items"][0]["name"], "Product 0");
    assert_eq!(order["items"][0]["unit_price_cents"], 1000);
    assert_eq!(order["items"][1]["unit_price_cents"], 2000);
    assert_eq!(order["total_cents"], 4000);
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["version"], 1);
    assert_eq!(
        order["shipping_address"]["city"], "Leeds",
        "the profile's address by default"
    );
    assert_eq!(shop.stock(&products[0]).await, 8);
    assert_eq!(
        shop.orders_db
            .count("outbox WHERE event_type = 'order.created'")
            .await,
        1
    );
    // The hold is confirmed right after the answer, in a batch.
    shop.orders_db.eventually("stock_settlements", 0).await;
    shop.products_db
        .eventually("reservations WHERE status = 'confirmed'", 1)
        .await;
}

#[tokio::test]
async fn a_given_shipping_address_is_used() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[5]).await;
    let body = json!([{ "items": items(&[(&products[0], 1)]),
        "shipping_address": {"line1": "2 Low Rd", "city": "York", "postal_code": "YO1", "country": "gb"} }]);
    let orders: Vec<Value> = shop
        .post("/orders", &token, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(orders[0]["shipping_address"]["city"], "York");
    assert_eq!(orders[0]["shipping_address"]["country"], "GB");
}

#[tokio::test]
async fn one_order_short_of_stock_creates_none_and_holds_nothing() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10, 1]).await;
    let body = json!([
        { "items": items(&[(&products[0], 3)]) },
        { "items": items(&[(&products[0], 1), (&products[1], 2)]) }
    ]);

    let problem = assert_problem(shop.post("/orders", &token, &body).await, 409).await;

    assert_eq!(problem["errors"][0]["index"], 1, "{problem}");
    assert_eq!(shop.orders_db.count("orders").await, 0);
    assert_eq!(shop.stock(&products[0]).await, 10);
    assert_eq!(shop.stock(&products[1]).await, 1);
}

#[tokio::test]
async fn invalid_orders_are_422_naming_each() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let body = json!([
        { "items": items(&[(&products[0], 1)]) },
        { "items": items(&[(&products[0], 0)]) },
        { "items": [] },
        { "items": items(&[(&Uuid::now_v7().to_string(), 1)]) }
    ]);
    let problem = assert_problem(shop.post("/orders", &token, &body).await, 422).await;
    let indexes: Vec<u64> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(indexes, vec![1, 2]);

    let unknown = json!([{ "items": items(&[(&products[0], 1)]) }, { "items": items(&[(&Uuid::now_v7().to_string(), 1)]) }]);
    let problem = assert_problem(shop.post("/orders", &token, &unknown).await, 422).await;
    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(shop.stock(&products[0]).await, 10);
    for body in [
        json!({"items": []}),
        json!([{"items": [{"product_id": "nope", "quantity": 1}]}]),
        json!([{"items": [], "colour": "red"}]),
    ] {
        let status = shop.post("/orders", &token, &body).await.status().as_u16();
        assert!(status == 400 || status == 422, "{body}: {status}");
    }
}

#[tokio::test]
async fn customers_order_for_themselves_only() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let (other, _) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let body = json!([{ "user_id": other, "items": items(&[(&products[0], 1)]) }]);
    assert_problem(shop.post("/orders", &token, &body).await, 403).await;
    assert_eq!(shop.stock(&products[0]).await, 10);
}

#[tokio::test]
async fn staff_order_for_any_existing_user() {
    let shop = TestShop::spawn().await;
    let (customer, _) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let support = shop.staff(Role::Support);
    let body = json!([{ "user_id": customer, "items": items(&[(&products[0], 1)]) }]);
    let orders: Vec<Value> = shop
        .post("/orders", &support, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(orders[0]["user_id"], customer.to_string());

    let nobody = json!([{ "user_id": Uuid::now_v7(), "items": items(&[(&products[0], 1)]) }]);
    let problem = assert_problem(shop.post("/orders", &support, &nobody).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "user_id");
}

#[tokio::test]
async fn a_thousand_orders_in_one_request() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[2000, 2000]).await;
    let body: Vec<Value> = (0..1000)
        .map(|i| json!({ "items": items(&[(&products[i % 2], 1), (&products[(i + 1) % 2], 1)]) }))
        .collect();
    let response = shop.post("/orders", &token, &Value::Array(body)).await;
    assert_eq!(response.status(), 201);
    let orders: Vec<Value> = response.json().await.expect("json");
    assert_eq!(orders.len(), 1000);
    assert_eq!(shop.stock(&products[0]).await, 1000);
    assert_eq!(shop.orders_db.count("orders").await, 1000);
    assert_eq!(shop.orders_db.count("order_items").await, 2000);
}

#[tokio::test]
async fn a_quantity_out_of_range_is_422_at_its_order_and_line() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let body = json!([
        { "items": items(&[(&products[0], 1)]) },
        { "items": items(&[(&products[0], 1), (&products[0], 10_001)]) },
    ]);
    let problem = assert_problem(shop.post("/orders", &token, &body).await, 422).await;
    assert_eq!(
        problem["errors"],
        json!([{"index": 1, "field": "items[1].quantity", "message": "must be 1 to 10000"}])
    );
    assert_eq!(problem["detail"], "items[1].quantity must be 1 to 10000");
    assert_eq!(shop.stock(&products[0]).await, 10);
}
