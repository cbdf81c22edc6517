use serde_json::json;

use crate::helpers::{TestApp, problem, user_item};

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/users"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("[{\"name\": ")
        .send()
        .await
        .expect("sent");
    problem(response, 400).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/users"))
        .bearer_auth(&app.admin)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("sent");
    problem(response, 415).await;
}

#[tokio::test]
async fn an_object_where_an_array_belongs_is_422() {
    let app = TestApp::spawn().await;
    problem(
        app.post("/users", &app.admin, &user_item("single")).await,
        422,
    )
    .await;
}

#[tokio::test]
async fn wrong_types_and_unknown_fields_are_422() {
    let app = TestApp::spawn().await;
    let mut wrong_type = user_item("x");
    wrong_type["name"] = json!(42);
    let mut unknown = user_item("y");
    unknown["password"] = json!("secret");
    for body in [
        json!([wrong_type]),
        json!([unknown]),
        json!([{"name": "missing fields"}]),
    ] {
        let problem = problem(app.post("/users", &app.admin, &body).await, 422).await;
        assert_eq!(problem["errors"][0]["index"], 0);
    }
    assert_eq!(app.db.count("users").await, 0);
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(5 * 1024 * 1024);
    let response = app
        .http
        .post(app.url("/users"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body(format!("[{{\"name\": \"{huge}\"}}]"))
        .send()
        .await
        .expect("sent");
    problem(response, 413).await;
}

#[tokio::test]
async fn a_malformed_id_in_the_path_is_400() {
    let app = TestApp::spawn().await;
    problem(app.get("/users/not-a-uuid", &app.admin).await, 400).await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    problem(app.get("/nothing/here", &app.admin).await, 404).await;
    let response = app
        .http
        .put(app.url("/users"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("sent");
    problem(response, 405).await;
}

#[tokio::test]
async fn the_request_id_is_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let response = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    assert!(!response.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn ops_endpoints_answer() {
    let app = TestApp::spawn().await;
    let ready: serde_json::Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");
    app.get("/users", &app.admin).await;
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    let openapi: serde_json::Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    for path in ["/users", "/users/{id}"] {
        assert!(openapi["paths"][path].is_object(), "{path} is documented");
    }
}
