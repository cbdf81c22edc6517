//! Verified purchases, from order events: a review is verified when its
//! author has a delivered order holding the product, whenever and in
//! whatever order the events arrive.

use uuid::Uuid;

use crate::helpers::{TestApp, order_created, status_changed};

async fn verified(app: &TestApp, review_id: &str) -> bool {
    app.read(&format!("/reviews/{review_id}")).await["verified_purchase"]
        .as_bool()
        .expect("a flag")
}

#[tokio::test]
async fn a_review_of_a_delivered_purchase_is_verified_when_written() {
    let app = TestApp::spawn().await;
    let (user_id, token) = app.customer("Ada").await;
    let product_id = app.product().await;
    app.bought(user_id, product_id, true).await;
    app.db.eventually("delivered_orders", 1).await;
    app.db.eventually("order_lines", 1).await;

    let review = app.review(&token, product_id, 5).await;
    assert_eq!(review["verified_purchase"], true);
}

#[tokio::test]
async fn a_review_turns_verified_when_its_order_is_delivered_later() {
    let app = TestApp::spawn().await;
    let (user_id, token) = app.customer("Ada").await;
    let product_id = app.product().await;
    let order_id = app.bought(user_id, product_id, false).await;
    app.db.eventually("order_lines", 1).await;
    let review = app.review(&token, product_id, 5).await;
    assert_eq!(
        review["verified_purchase"], false,
        "bought, not delivered yet"
    );

    app.publish(status_changed(order_id, user_id, "shipped"))
        .await;
    app.publish(status_changed(order_id, user_id, "delivered"))
        .await;
    app.db
        .eventually("reviews WHERE verified_purchase", 1)
        .await;
    assert!(verified(&app, review["review_id"].as_str().expect("id")).await);
}

#[tokio::test]
async fn a_delivery_heard_before_its_order_still_verifies() {
    let app = TestApp::spawn().await;
    let (user_id, token) = app.customer("Ada").await;
    let product_id = app.product().await;
    let review = app.review(&token, product_id, 4).await;
    let order_id = Uuid::now_v7();

    let delivered = app
        .publish(status_changed(order_id, user_id, "delivered"))
        .await;
    app.processed(delivered).await;
    app.publish(order_created(order_id, user_id, product_id))
        .await;
    app.db
        .eventually("reviews WHERE verified_purchase", 1)
        .await;
    assert!(verified(&app, review["review_id"].as_str().expect("id")).await);
}

#[tokio::test]
async fn another_users_purchase_or_another_product_verifies_nothing() {
    let app = TestApp::spawn().await;
    let (ada, token) = app.customer("Ada").await;
    let (bob, _) = app.customer("Bob").await;
    let (product_id, other_product) = (app.product().await, app.product().await);
    app.bought(bob, product_id, true).await;
    app.bought(ada, other_product, true).await;
    app.db.eventually("delivered_orders", 2).await;
    app.db.eventually("order_lines", 2).await;

    let review = app.review(&token, product_id, 3).await;
    assert_eq!(review["verified_purchase"], false);
}

#[tokio::test]
async fn a_review_written_while_its_purchase_is_delivered_is_verified() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        let (user_id, token) = app.customer("Racer").await;
        let product_id = app.product().await;
        let order_id = Uuid::now_v7();
        app.publish(order_created(order_id, user_id, product_id))
            .await;
        app.db
            .eventually(&format!("order_lines WHERE user_id = '{user_id}'"), 1)
            .await;
        tokio::join!(
            app.review(&token, product_id, 5),
            app.publish(status_changed(order_id, user_id, "delivered"))
        );
        app.db
            .eventually(
                &format!("reviews WHERE user_id = '{user_id}' AND verified_purchase"),
                1,
            )
            .await;
    }
}
