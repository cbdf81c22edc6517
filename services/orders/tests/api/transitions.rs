use platform::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestShop, assert_problem, id};

async fn set(shop: &TestShop, order: &str, token: &str, status: &str) -> reqwest::Response {
    shop.patch(
        &format!("/orders/{order}"),
        token,
        &json!({"status": status}),
    )
    .await
}

#[tokio::test]
async fn staff_move_an_order_forward_to_delivered() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let order = id(&shop.order(&token, &[(&products[0], 1)]).await);
    let support = shop.staff(Role::Support);
    for (status, version) in [("paid", 2), ("shipped", 3), ("delivered", 4)] {
        let response = set(&shop, &order, &support, status).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["status"], status);
        assert_eq!(body["version"], version);
    }
    assert_eq!(
        shop.orders_db
            .count("outbox WHERE event_type = 'order.status_changed'")
            .await,
        3
    );
    assert_eq!(
        shop.stock(&products[0]).await,
        9,
        "delivered orders keep their stock"
    );
}

#[tokio::test]
async fn refused_transitions_are_409_naming_the_allowed_ones() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let order = id(&shop.order(&token, &[(&products[0], 1)]).await);

    let problem = assert_problem(set(&shop, &order, &shop.admin, "shipped").await, 409).await;
    assert_eq!(problem["allowed"], json!(["paid", "cancelled"]));
    assert_problem(set(&shop, &order, &shop.admin, "created").await, 409).await;
    for status in ["paid", "shipped", "delivered"] {
        set(&shop, &order, &shop.admin, status).await;
    }
    let problem = assert_problem(set(&shop, &order, &shop.admin, "cancelled").await, 409).await;
    assert_eq!(problem["allowed"], json!([]));
    assert_problem(
        shop.patch(
            &format!("/orders/{order}"),
            &shop.admin,
            &json!({"status": "lost"}),
        )
        .await,
        422,
    )
    .await;
}

#[tokio::test]
async fn customers_cancel_their_own_but_cannot_move_orders_forward() {
    let shop = TestShop::spawn().await;
    let (_, alice) = shop.customer().await;
    let (_, bob) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let order = id(&shop.order(&alice, &[(&products[0], 3)]).await);

    assert_problem(set(&shop, &order, &alice, "paid").await, 403).await;
    assert_problem(set(&shop, &order, &bob, "cancelled").await, 404).await;
    assert_problem(
        set(&shop, &order, &shop.staff(Role::Support), "cancelled").await,
        403,
    )
    .await;
    assert_eq!(set(&shop, &order, &alice, "cancelled").await.status(), 200);
    assert_eq!(
        shop.stock(&products[0]).await,
        10,
        "cancelling returned the stock"
    );
}

#[tokio::test]
async fn cancelling_a_paid_order_returns_its_stock_only() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[20]).await;
    let body = json!([{ "items": [{"product_id": products[0], "quantity": 2}] }, { "items": [{"product_id": products[0], "quantity": 5}] }]);
    let placed: Vec<Value> = shop
        .post("/orders", &token, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shop.stock(&products[0]).await, 13);
    set(&shop, &id(&placed[1]), &shop.admin, "paid").await;
    assert_eq!(
        set(&shop, &id(&placed[1]), &shop.admin, "cancelled")
            .await
            .status(),
        200
    );
    assert_eq!(
        shop.stock(&products[0]).await,
        18,
        "the other order of the same request keeps its units"
    );
}

#[tokio::test]
async fn a_stale_version_is_412() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let order = id(&shop.order(&token, &[(&products[0], 1)]).await);
    let stale = shop
        .patch(
            &format!("/orders/{order}"),
            &shop.admin,
            &json!({"status": "paid", "version": 7}),
        )
        .await;
    assert_problem(stale, 412).await;
    let fresh = shop
        .patch(
            &format!("/orders/{order}"),
            &shop.admin,
            &json!({"status": "paid", "version": 1}),
        )
        .await;
    assert_eq!(fresh.status(), 200);
}

#[tokio::test]
async fn a_bulk_change_is_all_or_nothing() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let a = id(&shop.order(&token, &[(&products[0], 1)]).await);
    let b = id(&shop.order(&token, &[(&products[0], 1)]).await);
    let body = json!([{"order_id": a, "status": "paid"}, {"order_id": b, "status": "delivered"}]);
    let problem = assert_problem(shop.patch("/orders", &shop.admin, &body).await, 409).await;
    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(
        shop.orders_db
            .count("orders WHERE status = 'created'")
            .await,
        2
    );

    let body = json!([{"order_id": a, "status": "paid"}, {"order_id": b, "status": "cancelled"}]);
    let changed: Vec<Value> = shop
        .patch("/orders", &shop.admin, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(changed[0]["status"], "paid");
    assert_eq!(changed[1]["status"], "cancelled");
    assert_eq!(shop.stock(&products[0]).await, 9);
}

#[tokio::test]
async fn a_customer_asking_for_a_staff_move_is_403_whatever_the_status() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let order = id(&shop.order(&token, &[(&products[0], 1)]).await);

    // `created` cannot become `shipped` at all, but a customer may never ship.
    assert_problem(set(&shop, &order, &token, "shipped").await, 403).await;
    assert_problem(set(&shop, &order, &token, "delivered").await, 403).await;
}

#[tokio::test]
async fn a_bulk_change_naming_one_order_twice_is_422_with_both_indexes() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let a = id(&shop.order(&token, &[(&products[0], 1)]).await);
    let b = id(&shop.order(&token, &[(&products[0], 1)]).await);
    let body = json!([
        {"order_id": a, "status": "paid"},
        {"order_id": b, "status": "paid"},
        {"order_id": a, "status": "cancelled"}
    ]);
    let problem = assert_problem(shop.patch("/orders", &shop.admin, &body).await, 422).await;
    let indexes: Vec<&Value> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| &e["index"])
        .collect();
    assert_eq!(indexes, [&json!(0), &json!(2)]);
    assert_eq!(
        shop.orders_db
            .count("orders WHERE status = 'created'")
            .await,
        2,
        "nothing changed"
    );
    assert_eq!(
        shop.orders_db
            .count("outbox WHERE event_type = 'order.status_changed'")
            .await,
        0
    );
}

#[tokio::test]
async fn orders_left_unpaid_past_the_payment_window_are_cancelled_and_give_their_stock_back() {
    let shop = TestShop::spawn_with(crate::helpers::Options {
        orders: orders::OrdersArgs {
            payment_window_secs: 1,
            ..orders::OrdersArgs::default()
        },
        ..crate::helpers::Options::default()
    })
    .await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let unpaid = id(&shop.order(&token, &[(&products[0], 3)]).await);
    let paid = id(&shop.order(&token, &[(&products[0], 2)]).await);
    assert_eq!(set(&shop, &paid, &shop.admin, "paid").await.status(), 200);
    assert_eq!(shop.stock(&products[0]).await, 5);

    let mut status = Value::Null;
    for _ in 0..100 {
        let order: Value = shop
            .get(&format!("/orders/{unpaid}"), &token)
            .await
            .json()
            .await
            .expect("json");
        status = order["status"].clone();
        if status == "cancelled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "cancelled");
    let kept: Value = shop
        .get(&format!("/orders/{paid}"), &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(kept["status"], "paid", "a paid order is not touched");
    shop.orders_db
        .eventually("outbox WHERE event_type = 'order.status_changed'", 2)
        .await;
    for _ in 0..50 {
        if shop.stock(&products[0]).await == 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        shop.stock(&products[0]).await,
        8,
        "the unpaid order's 3 units are back"
    );
}
