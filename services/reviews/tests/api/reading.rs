//! Reading, which needs no token: a product's reviews filtered, sorted and
//! paged; its summary; an author's reviews; several by id.

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem, id_of};

fn ratings(page: &Value) -> Vec<i64> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| r["rating"].as_i64().expect("rating"))
        .collect()
}

/// A product with reviews of 5, 3, 5, 1 and 4 stars, written in that order;
/// the 3-star and 4-star authors bought it.
async fn reviewed_product(app: &TestApp) -> Uuid {
    let product_id = app.product().await;
    for (n, stars) in [5, 3, 5, 1, 4].into_iter().enumerate() {
        let (user_id, token) = app.customer(&format!("Reader {n}")).await;
        if stars == 3 || stars == 4 {
            app.bought(user_id, product_id, true).await;
            app.db
                .eventually(&format!("delivered_orders WHERE user_id = '{user_id}'"), 1)
                .await;
            app.db
                .eventually(&format!("order_lines WHERE user_id = '{user_id}'"), 1)
                .await;
        }
        app.review(&token, product_id, stars).await;
    }
    product_id
}

#[tokio::test]
async fn a_products_reviews_come_newest_first_and_sort_by_rating() {
    let app = TestApp::spawn().await;
    let product_id = reviewed_product(&app).await;
    let path = format!("/products/{product_id}/reviews");

    assert_eq!(ratings(&app.read(&path).await), [4, 1, 5, 3, 5]);
    assert_eq!(
        ratings(&app.read(&format!("{path}?sort=-rating,created_at")).await),
        [5, 5, 4, 3, 1]
    );
    assert_eq!(
        ratings(&app.read(&format!("{path}?sort=rating")).await),
        [1, 3, 4, 5, 5]
    );
}

#[tokio::test]
async fn a_products_reviews_filter_by_stars_and_verified_purchase() {
    let app = TestApp::spawn().await;
    let product_id = reviewed_product(&app).await;
    let path = format!("/products/{product_id}/reviews");

    assert_eq!(
        ratings(&app.read(&format!("{path}?rating=5")).await),
        [5, 5]
    );
    assert_eq!(
        ratings(&app.read(&format!("{path}?verified=true&sort=rating")).await),
        [3, 4]
    );
    assert_eq!(
        ratings(&app.read(&format!("{path}?verified=false&rating=1")).await),
        [1]
    );
    assert_eq!(
        ratings(&app.read(&format!("{path}?rating=2")).await),
        Vec::<i64>::new()
    );
}

#[tokio::test]
async fn pages_walk_every_review_once_in_any_sort() {
    let app = TestApp::spawn().await;
    let product_id = reviewed_product(&app).await;
    for sort in ["-created_at", "rating", "-rating", "rating,-created_at"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/products/{product_id}/reviews?limit=2&sort={sort}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = app.read(&path).await;
            seen.extend(page["data"].as_array().expect("data").iter().map(id_of));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (5, 5), "{sort}");
    }
}

#[tokio::test]
async fn bad_filters_sorts_and_limits_are_400() {
    let app = TestApp::spawn().await;
    let product_id = app.product().await;
    for query in [
        "rating=0",
        "rating=6",
        "rating=many",
        "verified=maybe",
        "sort=title",
        "sort=rating,rating",
        "limit=0",
        "limit=101",
        "cursor=nonsense",
        "colour=red",
    ] {
        let response = app
            .reviews
            .http
            .get(
                app.reviews
                    .url(&format!("/products/{product_id}/reviews?{query}")),
            )
            .send()
            .await
            .expect("sent");
        assert_problem(response, 400).await;
    }
}

#[tokio::test]
async fn the_summary_counts_averages_and_fills_the_histogram() {
    let app = TestApp::spawn().await;
    let product_id = reviewed_product(&app).await;
    let summary = app
        .read(&format!("/products/{product_id}/reviews/summary"))
        .await;
    assert_eq!(summary["count"], 5);
    assert_eq!(summary["average"], 3.6);
    assert_eq!(
        summary["histogram"],
        serde_json::json!({"1": 1, "2": 0, "3": 1, "4": 1, "5": 2})
    );

    let none = app
        .read(&format!("/products/{}/reviews/summary", Uuid::now_v7()))
        .await;
    assert_eq!(
        (none["count"].as_i64(), none["average"].is_null()),
        (Some(0), true)
    );
}

#[tokio::test]
async fn a_users_reviews_come_newest_first_and_none_is_an_empty_list() {
    let app = TestApp::spawn().await;
    let (user_id, token) = app.customer("Ada").await;
    let first = app.review(&token, app.product().await, 2).await;
    let second = app.review(&token, app.product().await, 5).await;

    let page = app.read(&format!("/users/{user_id}/reviews")).await;
    let ids: Vec<String> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, [id_of(&second), id_of(&first)]);

    let empty = app
        .read(&format!("/users/{}/reviews", Uuid::now_v7()))
        .await;
    assert_eq!(empty["data"], serde_json::json!([]));
    assert!(empty["next_cursor"].is_null());
}

#[tokio::test]
async fn several_reviews_are_read_by_id_with_the_missing_ones_named() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let review = app.review(&token, app.product().await, 3).await;
    let unknown = Uuid::now_v7();

    let batch = app
        .read(&format!("/reviews?ids={unknown},{}", id_of(&review)))
        .await;
    assert_eq!(batch["data"][0]["review_id"], review["review_id"]);
    assert_eq!(batch["missing"], serde_json::json!([unknown.to_string()]));
    assert_problem(
        app.reviews
            .http
            .get(app.reviews.url("/reviews?ids=x"))
            .send()
            .await
            .expect("sent"),
        400,
    )
    .await;
    assert_problem(
        app.reviews
            .http
            .get(app.reviews.url(&format!("/reviews/{unknown}")))
            .send()
            .await
            .expect("sent"),
        404,
    )
    .await;
}

#[tokio::test]
async fn a_products_first_page_and_summary_show_every_change_at_once() {
    let app = TestApp::spawn().await;
    let product_id = app.product().await;
    let (_, ada) = app.customer("Ada").await;
    let (_, bob) = app.customer("Bob").await;
    let page = format!("/products/{product_id}/reviews");
    let summary = format!("/products/{product_id}/reviews/summary");
    let count = |page: &Value| page["data"].as_array().expect("data").len();
    assert_eq!(count(&app.read(&page).await), 0);
    assert_eq!(app.read(&summary).await["count"], 0);

    let first = app.review(&ada, product_id, 5).await;
    assert_eq!(count(&app.read(&page).await), 1);
    assert_eq!(app.read(&summary).await["count"], 1);
    app.review(&bob, product_id, 1).await;
    assert_eq!(count(&app.read(&page).await), 2);

    let edited = app
        .edit(
            &ada,
            &id_of(&first),
            Some("\"1\""),
            &serde_json::json!({"title": "Changed"}),
        )
        .await;
    assert_eq!(edited.status(), 200);
    let titles: Vec<Value> = app.read(&page).await["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| r["title"].clone())
        .collect();
    assert!(titles.contains(&Value::from("Changed")), "{titles:?}");

    let deleted = app
        .reviews
        .delete(&format!("/reviews/{}", id_of(&first)), &ada)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(count(&app.read(&page).await), 1);
    assert_eq!(app.read(&summary).await["average"], 1.0);
}

#[tokio::test]
async fn a_cached_page_shows_a_purchase_verified_later() {
    let app = TestApp::spawn().await;
    let (user_id, token) = app.customer("Ada").await;
    let product_id = app.product().await;
    app.review(&token, product_id, 5).await;
    let page = format!("/products/{product_id}/reviews");
    assert_eq!(app.read(&page).await["data"][0]["verified_purchase"], false);

    app.bought(user_id, product_id, true).await;
    for _ in 0..200 {
        if app.read(&page).await["data"][0]["verified_purchase"] == true {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the cached page never showed the verified purchase");
}
