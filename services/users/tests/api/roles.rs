use platform::auth::Role;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, problem, user_item};

#[tokio::test]
async fn requests_without_a_token_are_401() {
    let app = TestApp::spawn().await;
    let response = app.http.get(app.url("/users")).send().await.expect("sent");
    problem(response, 401).await;
}

#[tokio::test]
async fn malformed_tampered_expired_and_foreign_tokens_are_401() {
    let app = TestApp::spawn().await;
    let valid = app.token(Uuid::now_v7(), Role::Admin);
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    // Flip a character of the payload: the signature no longer matches.
    let payload = parts[1].clone();
    parts[1] = format!(
        "{}{}",
        &payload[..payload.len() - 2],
        if payload.ends_with('A') { "BB" } else { "AA" }
    );
    let tampered = parts.join(".");
    let expired = app.issuer.token_with_ttl(Uuid::now_v7(), Role::Admin, -60);
    let foreign = testkit::TestIssuer::start()
        .await
        .expect("another issuer")
        .token(Uuid::now_v7(), Role::Admin);
    for token in [
        "garbage",
        tampered.as_str(),
        expired.as_str(),
        foreign.as_str(),
    ] {
        problem(app.get("/users", token).await, 401).await;
    }
}

#[tokio::test]
async fn customers_cannot_list_or_create_users() {
    let app = TestApp::spawn().await;
    let customer = app.token(Uuid::now_v7(), Role::Customer);
    problem(app.get("/users", &customer).await, 403).await;
    problem(
        app.post("/users", &customer, &json!([user_item("x")]))
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn support_lists_and_reads_but_cannot_create_change_or_delete() {
    let app = TestApp::spawn().await;
    let id = app.create_one("customer").await;
    let support = app.token(Uuid::now_v7(), Role::Support);

    assert_eq!(app.get("/users", &support).await.status(), 200);
    assert_eq!(
        app.get(&format!("/users/{id}"), &support).await.status(),
        200
    );
    problem(
        app.post("/users", &support, &json!([user_item("x")])).await,
        403,
    )
    .await;
    problem(
        app.patch(&format!("/users/{id}"), &support, &json!({"name": "x"}))
            .await,
        403,
    )
    .await;
    problem(app.delete(&format!("/users/{id}"), &support).await, 403).await;
}

#[tokio::test]
async fn a_customer_cannot_read_or_change_another_user() {
    let app = TestApp::spawn().await;
    let other = app.create_one("customer").await;
    let customer = app.token(Uuid::now_v7(), Role::Customer);

    problem(app.get(&format!("/users/{other}"), &customer).await, 403).await;
    problem(
        app.patch(&format!("/users/{other}"), &customer, &json!({"name": "x"}))
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn a_customer_cannot_change_its_own_role() {
    let app = TestApp::spawn().await;
    let id = app.create_one("customer").await;
    let token = app.token(id, Role::Customer);

    problem(
        app.patch(&format!("/users/{id}"), &token, &json!({"role": "admin"}))
            .await,
        403,
    )
    .await;
    let user: serde_json::Value = app
        .get(&format!("/users/{id}"), &app.admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(user["role"], "customer");
}

#[tokio::test]
async fn only_admins_delete() {
    let app = TestApp::spawn().await;
    let id = app.create_one("customer").await;
    problem(
        app.delete(&format!("/users/{id}"), &app.token(id, Role::Customer))
            .await,
        403,
    )
    .await;
    assert_eq!(app.db.count("users").await, 1);
}

#[tokio::test]
async fn a_role_change_revokes_the_users_tokens_at_once() {
    let app = TestApp::spawn().await;
    let demoted = app.create_one("admin").await;
    app.create_one("admin").await;
    let old_token = app.token(demoted, Role::Admin);
    assert_eq!(app.get("/users", &old_token).await.status(), 200);

    let response = app
        .patch(
            &format!("/users/{demoted}"),
            &app.admin,
            &json!({"role": "customer"}),
        )
        .await;
    assert_eq!(response.status(), 200);

    // Not even its own profile: the token claims a role the user lost.
    let after = app.get(&format!("/users/{demoted}"), &old_token).await;
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted() {
    let app = TestApp::spawn().await;
    let only = app.create_one("admin").await;
    let response = app
        .patch(
            &format!("/users/{only}"),
            &app.admin,
            &json!({"role": "support"}),
        )
        .await;
    let body = problem(response, 409).await;
    assert_eq!(body["errors"][0]["field"], "role");
    assert_eq!(app.db.count("users WHERE role = 'admin'").await, 1);
}

async fn demote(app: &TestApp, target: Uuid, by: Uuid) -> reqwest::StatusCode {
    app.patch(
        &format!("/users/{target}"),
        &app.token(by, Role::Admin),
        &json!({"role": "customer"}),
    )
    .await
    .status()
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        let a = app.create_one("admin").await;
        let b = app.create_one("admin").await;
        app.db.execute(&format!(
            "UPDATE users SET role = 'customer' WHERE role = 'admin' AND user_id NOT IN ('{a}', '{b}')"
        ))
        .await;
        let (first, second) = tokio::join!(demote(&app, a, b), demote(&app, b, a));
        let mut statuses = [first.as_u16(), second.as_u16()];
        statuses.sort_unstable();
        // The loser is refused as the last admin (409), or, when the winner's
        // change came first, as no admin any more: its token was revoked (401).
        assert!(
            statuses == [200, 409] || statuses == [200, 401],
            "{statuses:?}"
        );
        assert_eq!(app.db.count("users WHERE role = 'admin'").await, 1);
    }
}

#[tokio::test]
async fn a_revocation_whose_publication_was_missed_takes_effect_within_seconds() {
    let app = TestApp::spawn().await;
    let user = app.create_one("customer").await;
    let token = app.token(user, Role::Customer);
    assert_eq!(
        app.get(&format!("/users/{user}"), &token).await.status(),
        200
    );

    // Stored as a revocation is, but never published: as if the process's
    // subscription had silently died.
    let client = redis::Client::open("redis://127.0.0.1:6379").expect("url");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let at_ms = chrono::Utc::now().timestamp_millis();
    let _: () = redis::cmd("ZADD")
        .arg("{shop}:revoked:users")
        .arg(at_ms)
        .arg(user.to_string())
        .query_async(&mut redis)
        .await
        .expect("zadd");

    let started = std::time::Instant::now();
    while app.get(&format!("/users/{user}"), &token).await.status() == 200 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "the periodic re-read should have found it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
