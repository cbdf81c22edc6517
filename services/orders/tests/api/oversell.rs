//! The no-oversell proof: a crowd buying the last units at once.

use serde_json::json;

use crate::helpers::{Options, TestShop, items};

async fn crowd_buys_ten(shop: &TestShop) {
    let products = shop.products(&[10]).await;
    let mut customers = Vec::new();
    for _ in 0..100 {
        customers.push(shop.customer().await.1);
    }
    let body = json!([{ "items": items(&[(&products[0], 1)]) }]);
    let attempts = customers
        .iter()
        .map(|token| shop.post("/orders", token, &body));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        90,
        "{statuses:?}"
    );
    assert_eq!(shop.stock(&products[0]).await, 0);
    assert_eq!(shop.orders_db.count("orders").await, 10);
    // Every hold of a placed order gets confirmed; a refused order leaves none.
    shop.products_db
        .eventually("reservations WHERE status = 'held'", 0)
        .await;
    shop.products_db
        .eventually("reservations WHERE status = 'confirmed'", 10)
        .await;
}

#[tokio::test]
async fn a_hundred_customers_buying_ten_units_make_ten_orders() {
    let shop = TestShop::spawn().await;
    crowd_buys_ten(&shop).await;
}

#[tokio::test]
async fn two_replicas_each_of_orders_and_products_still_make_ten_orders() {
    let shop = TestShop::spawn_with(Options {
        replicas: 2,
        ..Options::default()
    })
    .await;
    crowd_buys_ten(&shop).await;
}
