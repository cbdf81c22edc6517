use platform::auth::Role;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, id_of, problem, user_item};

#[tokio::test]
async fn a_user_reads_its_own_profile() {
    let app = TestApp::spawn().await;
    let created = app.create(vec![user_item("Self")]).await;
    let id = id_of(&created[0]);

    let response = app
        .get(&format!("/users/{id}"), &app.token(id, Role::Customer))
        .await;

    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.expect("json");
    assert_eq!(user, created[0]);
}

#[tokio::test]
async fn an_unknown_user_is_404() {
    let app = TestApp::spawn().await;
    let response = app
        .get(&format!("/users/{}", Uuid::now_v7()), &app.admin)
        .await;
    problem(response, 404).await;
}

#[tokio::test]
async fn bulk_read_returns_found_users_in_order_and_lists_missing_ids() {
    let app = TestApp::spawn().await;
    let created = app.create(vec![user_item("A"), user_item("B")]).await;
    let (a, b) = (id_of(&created[0]), id_of(&created[1]));
    let unknown = Uuid::now_v7();

    let response = app
        .get(&format!("/users?ids={b},{unknown},{a}"), &app.admin)
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let ids: Vec<Uuid> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, vec![b, a]);
    assert_eq!(body["missing"], serde_json::json!([unknown.to_string()]));
}

#[tokio::test]
async fn bulk_read_refuses_more_than_a_hundred_ids() {
    let app = TestApp::spawn().await;
    let ids: Vec<String> = (0..101).map(|_| Uuid::now_v7().to_string()).collect();
    problem(
        app.get(&format!("/users?ids={}", ids.join(",")), &app.admin)
            .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn a_service_leaves_cors_to_the_gateway() {
    // Browsers reach the services through the gateway, which answers CORS once.
    let app = TestApp::spawn().await;
    let id = app.create_one("customer").await;
    let response = app
        .http
        .get(app.url(&format!("/users/{id}")))
        .header("origin", "https://shop.example")
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-")),
        "{:?}",
        response.headers()
    );
}
