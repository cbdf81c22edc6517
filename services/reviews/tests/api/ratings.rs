//! Ratings in the catalogue: products keeps each product's `rating_average`
//! and `rating_count` from review events, exact however often and in
//! whatever order they arrive; product lists filter and sort by them.

use events::{Event, ReviewChanged};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, id_of};

#[tokio::test]
async fn written_and_deleted_reviews_reach_the_products_rating() {
    let app = TestApp::spawn().await;
    let product_id = app.product().await;
    let (_, ada) = app.customer("Ada").await;
    let (_, bob) = app.customer("Bob").await;
    let before = app.catalogue(product_id).await;
    assert_eq!(
        (
            before["rating_count"].as_i64(),
            before["rating_average"].is_null()
        ),
        (Some(0), true)
    );

    app.review(&ada, product_id, 5).await;
    let review = app.review(&bob, product_id, 2).await;
    let rated = app.rating_count_becomes(product_id, 2).await;
    assert_eq!(rated["rating_average"], 3.5);
    assert!(
        rated["version"].as_i64() > before["version"].as_i64(),
        "the ETag moves"
    );

    let deleted = app
        .reviews
        .delete(&format!("/reviews/{}", id_of(&review)), &bob)
        .await;
    assert_eq!(deleted.status(), 204);
    let after = app.rating_count_becomes(product_id, 1).await;
    assert_eq!(after["rating_average"], 5.0);
}

fn review_event(review_id: Uuid, product_id: Uuid, rating: i16, version: i32) -> ReviewChanged {
    ReviewChanged {
        review_id,
        product_id,
        user_id: Uuid::now_v7(),
        rating,
        version,
    }
}

#[tokio::test]
async fn repeated_and_reordered_review_events_leave_the_rating_exact() {
    let app = TestApp::spawn().await;
    let product_id = app.product().await;
    let (kept, removed) = (Uuid::now_v7(), Uuid::now_v7());

    // The deletion overtakes its creation, and the kept review's event comes twice.
    app.publish(Event::ReviewDeleted(review_event(
        removed, product_id, 1, 2,
    )))
    .await;
    app.publish(Event::ReviewCreated(review_event(kept, product_id, 4, 1)))
        .await;
    app.publish(Event::ReviewCreated(review_event(kept, product_id, 4, 1)))
        .await;
    app.publish(Event::ReviewCreated(review_event(
        removed, product_id, 1, 1,
    )))
    .await;
    app.publish(Event::ReviewUpdated(review_event(kept, product_id, 4, 2)))
        .await;
    app.products_db.eventually("inbox", 5).await;

    let product = app.catalogue(product_id).await;
    assert_eq!(product["rating_count"], 1, "{product}");
    assert_eq!(product["rating_average"], 4.0);
}

#[tokio::test]
async fn many_reviews_at_once_are_all_counted() {
    let app = TestApp::spawn().await;
    let product_id = app.product().await;
    let events: Vec<_> = (0..40)
        .map(|n| {
            Event::ReviewCreated(review_event(
                Uuid::now_v7(),
                product_id,
                (n % 5 + 1) as i16,
                1,
            ))
        })
        .collect();
    futures::future::join_all(events.into_iter().map(|e| app.publish(e))).await;

    let product = app.rating_count_becomes(product_id, 40).await;
    assert_eq!(product["rating_average"], 3.0);
}

fn names(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["product_id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn product_lists_filter_by_min_rating_and_sort_by_rating() {
    let app = TestApp::spawn().await;
    let (low, high, unrated) = (
        app.product().await,
        app.product().await,
        app.product().await,
    );
    app.publish(Event::ReviewCreated(review_event(
        Uuid::now_v7(),
        low,
        2,
        1,
    )))
    .await;
    app.publish(Event::ReviewCreated(review_event(
        Uuid::now_v7(),
        high,
        5,
        1,
    )))
    .await;
    app.publish(Event::ReviewCreated(review_event(
        Uuid::now_v7(),
        high,
        4,
        1,
    )))
    .await;
    app.rating_count_becomes(high, 2).await;
    app.rating_count_becomes(low, 1).await;

    let list = |query: &'static str| {
        let url = app.products.url(&format!("/products?{query}"));
        let http = app.products.http.clone();
        async move {
            let response = http.get(url).send().await.expect("sent");
            assert_eq!(response.status(), 200, "{query}");
            response.json::<Value>().await.expect("json")
        }
    };
    let ids = |ids: &[Uuid]| ids.iter().map(Uuid::to_string).collect::<Vec<_>>();
    assert_eq!(
        names(&list("sort=-rating").await),
        ids(&[high, low, unrated])
    );
    assert_eq!(names(&list("min_rating=4").await), ids(&[high]));
    assert_eq!(
        names(&list("min_rating=2&sort=rating").await),
        ids(&[low, high])
    );
    let bad = app
        .products
        .http
        .get(app.products.url("/products?min_rating=6"))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), 400);
}
