use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestAuth, assert_problem, unique};

#[tokio::test]
async fn refreshing_answers_a_new_pair_and_spends_the_old_token() {
    let app = TestAuth::spawn().await;
    let registered = app.register(&unique("rot"), "password-1").await;
    let first = registered["refresh_token"].clone();

    let response = app.refresh(&first).await;
    assert_eq!(response.status(), 200);
    let pair: Value = response.json().await.expect("json");
    assert_ne!(pair["refresh_token"], first);
    assert_eq!(
        app.me(pair["access_token"].as_str().expect("token"))
            .await
            .status(),
        200
    );

    let second = app.refresh(&pair["refresh_token"]).await;
    assert_eq!(second.status(), 200, "the new one works once");
}

#[tokio::test]
async fn a_spent_token_presented_again_revokes_its_whole_family() {
    let app = TestAuth::spawn().await;
    let registered = app.register(&unique("reuse"), "password-1").await;
    let stolen = registered["refresh_token"].clone();
    let rotated: Value = app.refresh(&stolen).await.json().await.expect("json");

    assert_problem(app.refresh(&stolen).await, 401).await;
    assert_problem(app.refresh(&rotated["refresh_token"]).await, 401).await;
    assert_eq!(app.auth_db.count("refresh_tokens").await, 0);
}

#[tokio::test]
async fn a_reuse_revokes_the_access_tokens_of_the_session_but_not_of_other_logins() {
    let app = TestAuth::spawn().await;
    let username = unique("thief");
    let registered = app.register(&username, "password-1").await;
    let other: Value = app
        .login(&username, "password-1")
        .await
        .json()
        .await
        .expect("json");
    let stolen = registered["refresh_token"].clone();
    let rotated: Value = app.refresh(&stolen).await.json().await.expect("json");
    let access = |pair: &Value| pair["access_token"].as_str().expect("token").to_owned();
    assert_eq!(app.me(&access(&rotated)).await.status(), 200);

    assert_problem(app.refresh(&stolen).await, 401).await;

    assert_eq!(app.me(&access(&rotated)).await.status(), 401);
    assert_eq!(app.me(&access(&registered)).await.status(), 401);
    assert_eq!(
        app.me(&access(&other)).await.status(),
        200,
        "another login is another session"
    );
}

#[tokio::test]
async fn other_logins_survive_a_reuse_in_one_family() {
    let app = TestAuth::spawn().await;
    let username = unique("two");
    let registered = app.register(&username, "password-1").await;
    let other: Value = app
        .login(&username, "password-1")
        .await
        .json()
        .await
        .expect("json");
    app.refresh(&registered["refresh_token"]).await;
    app.refresh(&registered["refresh_token"]).await;
    assert_eq!(app.refresh(&other["refresh_token"]).await.status(), 200);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = TestAuth::spawn_with(|settings| settings.auth.refresh_ttl_secs = 1).await;
    let registered = app.register(&unique("late"), "password-1").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_problem(app.refresh(&registered["refresh_token"]).await, 401).await;
}

#[tokio::test]
async fn unknown_and_malformed_refresh_tokens_are_401() {
    let app = TestAuth::spawn().await;
    assert_problem(app.refresh(&json!(uuid::Uuid::new_v4())).await, 401).await;
    assert_problem(app.refresh(&json!("not-a-token")).await, 401).await;
    assert_problem(app.post("/auth/refresh", &json!({})).await, 422).await;
}
