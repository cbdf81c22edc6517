//! Authors: their names follow `user.*` events (a late older one never
//! wins), and a deleted user's reviews go, with the ratings following.

use chrono::{Duration, Utc};
use events::{Event, UserProfile};
use uuid::Uuid;

use crate::helpers::TestApp;

fn profile(user_id: Uuid, name: &str) -> UserProfile {
    UserProfile {
        user_id,
        email: format!("{}@example.com", user_id.simple()),
        name: name.into(),
        role: "customer".into(),
    }
}

#[tokio::test]
async fn a_renamed_authors_reviews_carry_the_new_name_and_a_late_old_name_loses() {
    let app = TestApp::spawn().await;
    let (user_id, token) = app.customer("Ada Byron").await;
    let review = app.review(&token, app.product().await, 5).await;
    let path = format!("/reviews/{}", review["review_id"].as_str().expect("id"));

    app.publish(Event::UserUpdated(profile(user_id, "Ada Lovelace")))
        .await;
    app.db
        .eventually("reviews WHERE author_name = 'Ada Lovelace'", 1)
        .await;
    let late = app
        .publish_at(
            Event::UserUpdated(profile(user_id, "Ada Byron")),
            Utc::now() - Duration::hours(1),
        )
        .await;
    app.processed(late).await;
    assert_eq!(app.read(&path).await["author_name"], "Ada Lovelace");
}

#[tokio::test]
async fn a_deleted_users_reviews_go_and_the_ratings_follow() {
    let app = TestApp::spawn().await;
    let (leaving, leaver) = app.customer("Leaving").await;
    let (_, staying) = app.customer("Staying").await;
    let (first, second) = (app.product().await, app.product().await);
    app.review(&leaver, first, 1).await;
    app.review(&leaver, second, 1).await;
    app.review(&staying, first, 5).await;
    app.rating_count_becomes(first, 2).await;

    app.user_deleted(leaving).await;
    app.db
        .eventually(&format!("reviews WHERE user_id = '{leaving}'"), 0)
        .await;
    let first = app.rating_count_becomes(first, 1).await;
    assert_eq!(first["rating_average"], 5.0);
    app.rating_count_becomes(second, 0).await;
    let page = app.read(&format!("/users/{leaving}/reviews")).await;
    assert_eq!(page["data"], serde_json::json!([]));

    // No late event brings the author back.
    let late = app
        .publish(Event::UserUpdated(profile(leaving, "Back")))
        .await;
    app.processed(late).await;
    let again = app
        .write(
            &leaver,
            app.product().await,
            &serde_json::json!({"rating": 3, "title": "t", "body": "b"}),
        )
        .await;
    assert_eq!(again.status(), 401);
}
