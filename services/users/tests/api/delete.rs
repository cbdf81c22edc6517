use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, id_of, problem, user_item};

#[tokio::test]
async fn an_admin_deletes_a_user() {
    let app = TestApp::spawn().await;
    let id = app.create_one("customer").await;

    let response = app.delete(&format!("/users/{id}"), &app.admin).await;

    assert_eq!(response.status(), 204);
    problem(app.get(&format!("/users/{id}"), &app.admin).await, 404).await;
}

#[tokio::test]
async fn bulk_delete_removes_every_named_user() {
    let app = TestApp::spawn().await;
    let created = app
        .create(vec![user_item("A"), user_item("B"), user_item("C")])
        .await;
    let (a, b) = (id_of(&created[0]), id_of(&created[1]));

    let response = app.delete(&format!("/users?ids={a},{b}"), &app.admin).await;

    assert_eq!(response.status(), 204);
    assert_eq!(app.db.count("users").await, 1);
}

#[tokio::test]
async fn deleting_an_admin_is_refused_and_nothing_is_deleted() {
    let app = TestApp::spawn().await;
    let customer = app.create_one("customer").await;
    let admin = app.create_one("admin").await;

    let response = app
        .delete(&format!("/users?ids={customer},{admin}"), &app.admin)
        .await;

    let problem = problem(response, 409).await;
    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(app.db.count("users").await, 2);
    problem_free_read(&app, customer).await;
}

#[tokio::test]
async fn deleting_with_an_unknown_id_is_404_and_nothing_is_deleted() {
    let app = TestApp::spawn().await;
    let customer = app.create_one("customer").await;

    let response = app
        .delete(
            &format!("/users?ids={customer},{}", Uuid::now_v7()),
            &app.admin,
        )
        .await;

    problem(response, 404).await;
    assert_eq!(app.db.count("users").await, 1);
}

#[tokio::test]
async fn bulk_delete_without_ids_is_a_bad_request() {
    let app = TestApp::spawn().await;
    problem(app.delete("/users", &app.admin).await, 400).await;
}

async fn problem_free_read(app: &TestApp, id: Uuid) {
    let response = app.get(&format!("/users/{id}"), &app.admin).await;
    assert_eq!(response.status(), 200);
    let _: Value = response.json().await.expect("json");
}
