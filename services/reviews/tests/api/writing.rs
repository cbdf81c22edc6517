//! Writing a review: one per user and product, of a product that exists,
//! with the rules on rating, title and body.

use futures::future::join_all;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Options, TestApp, Users, assert_problem};

#[tokio::test]
async fn a_signed_in_user_reviews_a_product_and_anyone_reads_it() {
    let app = TestApp::spawn().await;
    let (user_id, token) = app.customer("Ada Lovelace").await;
    let product_id = app.product().await;

    let body = json!({"rating": 4, "title": "  Boils fast  ", "body": "Two minutes\nfor a litre."});
    let response = app.write(&token, product_id, &body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let review: serde_json::Value = response.json().await.expect("json");
    assert_eq!(review["product_id"], product_id.to_string());
    assert_eq!(review["user_id"], user_id.to_string());
    assert_eq!(review["author_name"], "Ada Lovelace");
    assert_eq!(review["rating"], 4);
    assert_eq!(review["title"], "Boils fast");
    assert_eq!(review["body"], "Two minutes\nfor a litre.");
    assert_eq!(review["verified_purchase"], false);
    assert_eq!(review["version"], 1);

    let read = app
        .read(&format!(
            "/reviews/{}",
            review["review_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(read, review);
}

#[tokio::test]
async fn a_second_review_of_the_same_product_by_the_same_user_is_409() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let product_id = app.product().await;
    app.review(&token, product_id, 5).await;

    let again = app
        .write(
            &token,
            product_id,
            &json!({"rating": 1, "title": "t", "body": "b"}),
        )
        .await;
    assert_problem(again, 409).await;
    assert_eq!(app.db.count("reviews").await, 1);
}

#[tokio::test]
async fn one_user_writing_the_same_review_many_times_at_once_gets_one() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let product_id = app.product().await;
    let body = json!({"rating": 3, "title": "t", "body": "b"});

    let statuses: Vec<u16> = join_all((0..8).map(|_| app.write(&token, product_id, &body)))
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(app.db.count("reviews").await, 1);
    assert_eq!(app.db.count("outbox").await, 1, "one review.created");
}

#[tokio::test]
async fn writing_without_a_token_is_401() {
    let app = TestApp::spawn().await;
    let product_id = app.product().await;
    let response = app
        .write(
            "not-a-token",
            product_id,
            &json!({"rating": 3, "title": "t", "body": "b"}),
        )
        .await;
    assert_problem(response, 401).await;
}

#[tokio::test]
async fn an_unknown_product_cannot_be_reviewed() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let response = app
        .write(
            &token,
            Uuid::now_v7(),
            &json!({"rating": 3, "title": "t", "body": "b"}),
        )
        .await;
    assert_problem(response, 404).await;
}

#[tokio::test]
async fn a_deleted_product_cannot_be_reviewed() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let product_id = app.product().await;
    let deleted = app
        .products
        .delete(&format!("/products/{product_id}"), &app.admin)
        .await;
    assert_eq!(deleted.status(), 204);

    let response = app
        .write(
            &token,
            product_id,
            &json!({"rating": 3, "title": "t", "body": "b"}),
        )
        .await;
    assert_problem(response, 404).await;
}

#[tokio::test]
async fn with_the_catalogue_away_a_product_its_events_announced_is_still_reviewable() {
    let app = TestApp::spawn_with(Options {
        catalogue_away: true,
        ..Options::default()
    })
    .await;
    let (_, token) = app.customer("Ada").await;
    let announced = app.product().await;
    app.db
        .eventually(&format!("products WHERE product_id = '{announced}'"), 1)
        .await;
    let body = json!({"rating": 3, "title": "t", "body": "b"});

    assert_eq!(app.write(&token, announced, &body).await.status(), 201);
    let unheard_of = app.write(&token, Uuid::now_v7(), &body).await;
    assert_problem(unheard_of, 503).await;
}

#[tokio::test]
async fn out_of_range_fields_are_422_naming_each() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let product_id = app.product().await;
    let body = json!({"rating": 6, "title": "x".repeat(121), "body": "", "stars": 5});

    let problem = assert_problem(app.write(&token, product_id, &body).await, 422).await;
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["body", "rating", "stars", "title"]);
    assert_eq!(app.db.count("reviews").await, 0);
}

#[tokio::test]
async fn a_body_of_five_thousand_characters_is_taken_and_one_more_is_not() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let (first, second) = (app.product().await, app.product().await);
    let long = |n: usize| json!({"rating": 2, "title": "é".repeat(120), "body": "ü".repeat(n)});

    assert_problem(app.write(&token, first, &long(5001)).await, 422).await;
    assert_eq!(app.write(&token, second, &long(5000)).await.status(), 201);
}

#[tokio::test]
async fn malformed_json_is_400_and_another_media_type_is_415() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let product_id = app.product().await;
    let url = app.reviews.url(&format!("/products/{product_id}/reviews"));
    let send = |content_type: &'static str, body: &'static str| {
        app.reviews
            .http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    assert_problem(
        send("application/json", "{\"rating\": 4,")
            .await
            .expect("sent"),
        400,
    )
    .await;
    assert_problem(send("text/plain", "4 stars").await.expect("sent"), 415).await;
    assert_problem(send("application/json", "[1, 2]").await.expect("sent"), 422).await;
}

#[tokio::test]
async fn an_author_no_event_has_named_yet_is_named_by_the_users_service() {
    let users = spawn_users().await;
    let app = TestApp::spawn_with(Options {
        users: Users::At(users.base.clone()),
        ..Options::default()
    })
    .await;
    // The users service runs under its own namespace: its events never reach reviews.
    let created = users
        .api
        .post(
            "/users",
            &users.admin,
            &json!([{
                "name": "Grace Hopper",
                "email": "grace@example.com",
                "phone": "+1 202 555 0100",
                "address": {"line1": "1 Navy Way", "city": "Arlington", "postal_code": "22202", "country": "US"}
            }]),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.expect("json");
    let user_id: Uuid = created[0]["user_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let token = app.issuer.token(user_id, platform::auth::Role::Customer);

    let review = app.review(&token, app.product().await, 5).await;
    assert_eq!(review["author_name"], "Grace Hopper");
}

#[tokio::test]
async fn an_author_unknown_here_while_the_users_service_is_away_gets_503() {
    let app = TestApp::spawn().await;
    let token = app
        .issuer
        .token(Uuid::now_v7(), platform::auth::Role::Customer);
    let response = app
        .write(
            &token,
            app.product().await,
            &json!({"rating": 3, "title": "t", "body": "b"}),
        )
        .await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 503).await;
    assert_eq!(app.db.count("reviews").await, 0);
}

struct UsersService {
    base: String,
    api: testkit::Api,
    admin: String,
    _issuer: testkit::TestIssuer,
    _shutdown: tokio_util::sync::DropGuard,
    _db: testkit::TestDatabase,
}

async fn spawn_users() -> UsersService {
    let issuer = testkit::TestIssuer::start().await.expect("JWKS");
    let db = testkit::TestDatabase::create("users", users::migrations())
        .await
        .expect("users db");
    let settings = platform::settings::ServiceSettings {
        internal_token: secrecy::SecretString::from(
            "reviews-tests-internal-token-of-32-bytes-or-more",
        ),
        ..testkit::service_settings("users", &db, issuer.settings.clone())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move { users::run_on(listener, settings, stop).await });
    testkit::wait_healthy(&base).await;
    UsersService {
        api: testkit::Api::new(&base),
        admin: issuer.token(Uuid::now_v7(), platform::auth::Role::Admin),
        base,
        _issuer: issuer,
        _shutdown: shutdown.drop_guard(),
        _db: db,
    }
}
