use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestAuth, assert_problem, unique};

/// Polls until `check` holds, and returns how long that took.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within {limit:?}");
}

#[tokio::test]
async fn logout_stops_the_access_token_in_another_service_within_a_second() {
    let app = TestAuth::spawn().await;
    let registered = app.register(&unique("bye"), "password-1").await;
    let token = registered["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let id = registered["user"]["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(app.profile(&id, &token).await.status(), 200);

    let response = app
        .post_bearer(
            "/auth/logout",
            &token,
            &json!({"refresh_token": registered["refresh_token"]}),
        )
        .await;
    assert_eq!(response.status(), 204);

    within(Duration::from_secs(1), async || {
        app.profile(&id, &token).await.status() == 401
    })
    .await;
    assert_problem(app.me(&token).await, 401).await;
    let refreshed = app.refresh(&registered["refresh_token"]).await;
    assert_problem(refreshed, 401).await;
}

#[tokio::test]
async fn logout_without_a_body_revokes_the_access_token_only() {
    let app = TestAuth::spawn().await;
    let registered = app.register(&unique("half"), "password-1").await;
    let token = registered["access_token"].as_str().expect("token");
    let response = app
        .http
        .post(app.url("/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204);
    assert_problem(app.me(token).await, 401).await;
    let refreshed = app.refresh(&registered["refresh_token"]).await;
    assert_eq!(refreshed.status(), 200, "the refresh token was not named");
}

#[tokio::test]
async fn logout_all_stops_every_token_of_the_user() {
    let app = TestAuth::spawn().await;
    let username = unique("all");
    let first = app.register(&username, "password-1").await;
    let second: Value = app
        .login(&username, "password-1")
        .await
        .json()
        .await
        .expect("json");
    let id = first["user"]["user_id"].as_str().expect("id").to_owned();
    let first_token = first["access_token"].as_str().expect("token").to_owned();
    let second_token = second["access_token"].as_str().expect("token").to_owned();

    let response = app
        .post_bearer("/auth/logout-all", &second_token, &json!({}))
        .await;
    assert_eq!(response.status(), 204);

    within(Duration::from_secs(1), async || {
        app.profile(&id, &first_token).await.status() == 401
    })
    .await;
    assert_problem(app.me(&second_token).await, 401).await;
    for refresh in [&first["refresh_token"], &second["refresh_token"]] {
        assert_problem(app.refresh(refresh).await, 401).await;
    }
    let again = app.login(&username, "password-1").await;
    assert_eq!(again.status(), 200, "logging in again still works");
    let fresh: Value = again.json().await.expect("json");
    assert_eq!(
        app.me(fresh["access_token"].as_str().expect("token"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn changing_the_password_revokes_sessions_and_swaps_the_password() {
    let app = TestAuth::spawn().await;
    let username = unique("pw");
    let registered = app.register(&username, "password-old").await;
    let token = registered["access_token"]
        .as_str()
        .expect("token")
        .to_owned();

    let wrong = app
        .http
        .put(app.url("/auth/password"))
        .bearer_auth(&token)
        .json(&json!({"current_password": "not-it-at-all", "new_password": "password-new"}))
        .send()
        .await
        .expect("sent");
    assert_problem(wrong, 403).await;

    let changed = app
        .http
        .put(app.url("/auth/password"))
        .bearer_auth(&token)
        .json(&json!({"current_password": "password-old", "new_password": "password-new"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(changed.status(), 200);
    let fresh: Value = changed.json().await.expect("a fresh pair");

    assert_problem(app.me(&token).await, 401).await;
    assert_eq!(
        app.me(fresh["access_token"].as_str().expect("token"))
            .await
            .status(),
        200,
        "the pair answered by the change is the one that works"
    );
    assert_eq!(app.refresh(&fresh["refresh_token"]).await.status(), 200);
    assert_problem(app.refresh(&registered["refresh_token"]).await, 401).await;
    assert_problem(app.login(&username, "password-old").await, 401).await;
    assert_eq!(app.login(&username, "password-new").await.status(), 200);
}

#[tokio::test]
async fn deleting_a_user_stops_its_tokens() {
    let app = TestAuth::spawn().await;
    let admin = app.admin_token().await;
    let registered = app.register(&unique("gone"), "password-1").await;
    let token = registered["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let id = registered["user"]["user_id"]
        .as_str()
        .expect("id")
        .to_owned();

    assert_eq!(app.delete_user(&id, &admin).await.status(), 204);

    within(Duration::from_secs(1), async || {
        app.me(&token).await.status() == 401
    })
    .await;
}

#[tokio::test]
async fn deleting_a_user_removes_the_login_through_the_event() {
    let app = TestAuth::spawn().await;
    let admin = app.admin_token().await;
    let username = unique("leaving");
    let registered = app.register(&username, "password-1").await;
    let id = registered["user"]["user_id"]
        .as_str()
        .expect("id")
        .to_owned();

    assert_eq!(app.delete_user(&id, &admin).await.status(), 204);

    let logins = &format!("user_auth WHERE user_id = '{id}'");
    within(Duration::from_secs(10), async || {
        app.auth_db.count(logins).await == 0
    })
    .await;
    assert_eq!(
        app.auth_db
            .count(&format!("refresh_tokens WHERE user_id = '{id}'"))
            .await,
        0
    );
    assert_eq!(app.auth_db.count("inbox").await, 1, "processed once");
    assert_problem(app.login(&username, "password-1").await, 401).await;
}

#[tokio::test]
async fn a_login_racing_a_password_change_never_outlives_it() {
    let app = TestAuth::spawn().await;
    for round in 0..15 {
        let username = unique("racer");
        let registered = app.register(&username, "password-old").await;
        let token = registered["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        let change = app
            .http
            .put(app.url("/auth/password"))
            .bearer_auth(&token)
            .json(&json!({"current_password": "password-old", "new_password": "password-new"}))
            .send();
        let (changed, logged_in) = tokio::join!(change, app.login(&username, "password-old"));
        assert_eq!(changed.expect("sent").status(), 200);
        if logged_in.status() != 200 {
            continue;
        }
        // Before, during or after: the change ends the session this login opened.
        let pair: Value = logged_in.json().await.expect("json");
        assert_problem(
            app.me(pair["access_token"].as_str().expect("token")).await,
            401,
        )
        .await;
        let refreshed = app.refresh(&pair["refresh_token"]).await;
        assert_eq!(refreshed.status(), 401, "round {round}");
    }
}

#[tokio::test]
async fn a_role_change_ends_the_users_refresh_tokens_like_logout_all() {
    let app = TestAuth::spawn().await;
    let admin = app.admin_token().await;
    let registered = app.register(&unique("promoted"), "password-1").await;
    let id = registered["user"]["user_id"].as_str().expect("id");

    let changed = app
        .http
        .patch(format!("{}/users/{id}", app.users_base))
        .bearer_auth(&admin)
        .json(&json!({"role": "support"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(changed.status(), 200);

    let refreshed = app.refresh(&registered["refresh_token"]).await;
    assert_problem(refreshed, 401).await;
}
