//! A placed order's stock hold outlives any outage: holds whose confirmation
//! cannot reach the products service lapse there, and products asks orders
//! before giving any of them back.

use std::time::Duration;

use serde_json::json;
use sqlx::{Connection, Executor};

use crate::helpers::{Options, TestShop, assert_problem, items};
use secrecy::ExposeSecret;

/// Holds that lapse after `ttl_secs`, swept every second.
fn short_holds(ttl_secs: u64, products_via_proxy: bool) -> Options {
    Options {
        products: products::ProductsArgs {
            reservation_ttl_secs: ttl_secs,
            expiry_interval_secs: 1,
            ..products::ProductsArgs::default()
        },
        products_via_proxy,
        ..Options::default()
    }
}

/// The write of an order, waiting on the lock of [`block_order_writes`].
const WRITE_WAITING: &str = "pg_stat_activity WHERE datname = current_database()
      AND wait_event_type = 'Lock' AND query LIKE 'WITH write_%'";

/// Holds every write of orders until the returned transaction ends; reads
/// and other tables go on.
async fn block_order_writes(shop: &TestShop) -> sqlx::PgConnection {
    let mut conn = sqlx::PgConnection::connect(shop.orders_db.url.expose_secret())
        .await
        .expect("connect");
    conn.execute("BEGIN; LOCK TABLE orders IN EXCLUSIVE MODE")
        .await
        .expect("lock");
    conn
}

/// Places an order of `quantity` units of `product` in a task of its own.
fn order_in_background(
    shop: &TestShop,
    token: &str,
    product: &str,
    quantity: i64,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let api = shop.http.clone();
    let url = shop.url("/orders");
    let body = json!([{ "items": items(&[(product, quantity)]) }]);
    let token = token.to_owned();
    tokio::spawn(async move {
        api.post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("sent")
    })
}

/// An order of 3 of a product's 10 units whose stock is held in products
/// and whose write waits on [`block_order_writes`]'s lock: the lock, the
/// request in flight, and the product.
async fn order_waiting_to_be_written(
    shop: &TestShop,
) -> (
    sqlx::PgConnection,
    tokio::task::JoinHandle<reqwest::Response>,
    String,
) {
    let (_, token) = shop.customer().await;
    let product = shop.products(&[10]).await.remove(0);
    let lock = block_order_writes(shop).await;
    let placing = order_in_background(shop, &token, &product, 3);
    let held = format!("products WHERE product_id = '{product}' AND stock = 7");
    shop.products_db.eventually(&held, 1).await;
    // Orders has the hold's answer: its write waits on the lock.
    shop.orders_db.eventually(WRITE_WAITING, 1).await;
    (lock, placing, product)
}

#[tokio::test]
async fn an_order_keeps_its_stock_when_products_is_cut_off_longer_than_the_hold() {
    let shop = TestShop::spawn_with(short_holds(5, true)).await;
    let (lock, placing, product) = order_waiting_to_be_written(&shop).await;
    // The write goes on (well within the hold's 5 s) once products is cut
    // off, so its confirmation cannot follow.
    let held = format!("products WHERE product_id = '{product}' AND stock = 7");
    let link = shop.products_link.as_ref().expect("proxy");
    link.cut();
    lock.close().await.expect("unlock");
    assert_eq!(placing.await.expect("placed").status(), 201);

    // The confirmation cannot get through; the hold lapses and is swept.
    let swept = "reservations WHERE status <> 'held'";
    for _ in 0..150 {
        if shop.products_db.count(swept).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        shop.products_db
            .count("reservations WHERE status = 'confirmed'")
            .await,
        1,
        "the sweep confirmed the hold its order uses"
    );
    assert_eq!(shop.products_db.count(&held).await, 1, "stock kept");

    link.restore();
    shop.orders_db.eventually("stock_settlements", 0).await;
    shop.orders_db.eventually("reservation_outcomes", 0).await;
    assert_eq!(shop.stock(&product).await, 7);
}

#[tokio::test]
async fn an_order_whose_hold_lapsed_and_was_released_before_it_was_written_is_refused() {
    let shop = TestShop::spawn_with(short_holds(3, false)).await;
    let (lock, placing, product) = order_waiting_to_be_written(&shop).await;
    // The hold lapses while the write waits: no order uses it yet, so it goes.
    let back = format!("products WHERE product_id = '{product}' AND stock = 10");
    shop.products_db.eventually(&back, 1).await;
    lock.close().await.expect("unlock");

    let problem = assert_problem(placing.await.expect("answered"), 503).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("lapsed"),
        "{problem}"
    );
    assert_eq!(shop.orders_db.count("orders").await, 0);
    assert_eq!(shop.products_db.count(&back).await, 1, "nothing sold");
}

#[tokio::test]
async fn lapsed_holds_are_decided_only_by_internal_callers() {
    let shop = TestShop::spawn().await;
    let response = shop
        .http
        .post(format!("{}/internal/reservations/lapsed", shop.orders[0]))
        .json(&json!({ "reservation_ids": [uuid::Uuid::now_v7()] }))
        .send()
        .await
        .expect("sent");
    assert_problem(response, 401).await;
}
