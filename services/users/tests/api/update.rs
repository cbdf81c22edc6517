use platform::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of, problem, user_item};

#[tokio::test]
async fn a_user_changes_its_own_profile() {
    let app = TestApp::spawn().await;
    let created = app.create(vec![user_item("Before")]).await;
    let id = id_of(&created[0]);
    let token = app.token(id, Role::Customer);

    let response = app
        .patch(
            &format!("/users/{id}"),
            &token,
            &json!({"name": "After", "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "us"}}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.expect("json");
    assert_eq!(user["name"], "After");
    assert_eq!(user["address"]["country"], "US");
    assert_eq!(user["email"], created[0]["email"]);
    assert_ne!(user["updated_at"], created[0]["updated_at"]);
}

#[tokio::test]
async fn taking_another_users_email_is_a_conflict() {
    let app = TestApp::spawn().await;
    let created = app.create(vec![user_item("One"), user_item("Two")]).await;
    let id = id_of(&created[1]);

    let response = app
        .patch(
            &format!("/users/{id}"),
            &app.admin,
            &json!({"email": created[0]["email"]}),
        )
        .await;

    let problem = problem(response, 409).await;
    assert_eq!(problem["errors"][0]["field"], "email");
}

#[tokio::test]
async fn an_admin_changes_a_role() {
    let app = TestApp::spawn().await;
    let id = app.create_one("customer").await;
    let response = app
        .patch(
            &format!("/users/{id}"),
            &app.admin,
            &json!({"role": "support"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.expect("json");
    assert_eq!(user["role"], "support");
}

#[tokio::test]
async fn invalid_and_empty_patches_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let created = app.create(vec![user_item("Stable")]).await;
    let id = id_of(&created[0]);

    problem(
        app.patch(
            &format!("/users/{id}"),
            &app.admin,
            &json!({"email": "nope"}),
        )
        .await,
        422,
    )
    .await;
    problem(
        app.patch(&format!("/users/{id}"), &app.admin, &json!({}))
            .await,
        422,
    )
    .await;
    problem(
        app.patch(
            &format!("/users/{id}"),
            &app.admin,
            &json!({"nickname": "x"}),
        )
        .await,
        422,
    )
    .await;

    let user: Value = app
        .get(&format!("/users/{id}"), &app.admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(user, created[0]);
}

#[tokio::test]
async fn patching_an_unknown_user_is_404() {
    let app = TestApp::spawn().await;
    let response = app
        .patch(
            &format!("/users/{}", uuid::Uuid::now_v7()),
            &app.admin,
            &json!({"name": "x"}),
        )
        .await;
    problem(response, 404).await;
}
