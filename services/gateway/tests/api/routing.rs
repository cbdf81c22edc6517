use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::helpers::{TestGateway, assert_problem};

#[tokio::test]
async fn users_paths_reach_the_users_service() {
    let gw = TestGateway::spawn().await;
    let created = gw
        .http
        .post(gw.url("/users"))
        .bearer_auth(&gw.admin)
        .json(&json!([{
            "name": "Through the gateway",
            "email": format!("{}@example.com", uuid::Uuid::now_v7().simple()),
            "phone": "+1 555 0100",
            "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
        }]))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created[0]["user_id"].as_str().expect("id");

    let read = gw
        .http
        .get(gw.url(&format!("/users/{id}")))
        .bearer_auth(&gw.admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.expect("json");
    assert_eq!(read["name"], "Through the gateway");
}

#[tokio::test]
async fn purchase_history_goes_to_orders_with_path_query_and_token_intact() {
    let gw = TestGateway::spawn().await;
    let response = gw
        .http
        .get(gw.url("/users/abc/orders?limit=5"))
        .bearer_auth("token-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.expect("json");
    assert_eq!(echoed["path"], "/users/abc/orders?limit=5");
    assert_eq!(echoed["authorization"], "Bearer token-123");
}

#[tokio::test]
async fn reviews_paths_reach_reviews_not_products_or_users() {
    let gw = TestGateway::spawn().await;
    for path in [
        "/products/abc/reviews?rating=5",
        "/products/abc/reviews/summary",
        "/users/abc/reviews",
        "/reviews/abc",
        "/reviews?ids=a,b",
    ] {
        let response = gw.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let echoed: Value = response.json().await.expect("json");
        assert_eq!(echoed["path"], path);
    }
    // The rest of /products stays with products, which is down here.
    assert_eq!(gw.get("/products/abc").await.status(), 503);
}

#[tokio::test]
async fn the_request_id_is_passed_to_the_service_and_returned() {
    let gw = TestGateway::spawn().await;
    let response = gw
        .http
        .post(gw.url("/auth/login"))
        .header("x-request-id", "req-77")
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "req-77");
    let echoed: Value = response.json().await.expect("json");
    assert_eq!(echoed["request_id"], "req-77");
    assert_eq!(echoed["method"], "POST");

    let generated: Value = gw.get("/auth/me").await.json().await.expect("json");
    assert!(
        !generated["request_id"].as_str().expect("id").is_empty(),
        "one is generated when absent"
    );
}

#[tokio::test]
async fn internal_routes_are_never_forwarded() {
    let gw = TestGateway::spawn().await;
    for path in ["/internal/users", "/internal", "/internal/stock/reserve"] {
        assert_problem(gw.get(path).await, 404).await;
        let post = gw
            .http
            .post(gw.url(path))
            .json(&json!({}))
            .send()
            .await
            .expect("sent");
        assert_problem(post, 404).await;
    }
    assert_eq!(gw.echo_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unknown_paths_are_a_problem_404() {
    let gw = TestGateway::spawn().await;
    for path in ["/", "/nope", "/usersx", "/metrics/../internal"] {
        assert_problem(gw.get(path).await, 404).await;
    }
}

#[tokio::test]
async fn a_service_that_is_down_is_a_problem_503() {
    let gw = TestGateway::spawn().await;
    let body = assert_problem(gw.get("/products?limit=1").await, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("products")
    );
    assert_problem(gw.get("/notifications").await, 503).await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let gw = TestGateway::spawn().await;
    let echoed: Value = gw
        .http
        .get(gw.url("/auth/jwks"))
        .header("connection", "keep-alive, x-secret-hop")
        .header("x-secret-hop", "1")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_ne!(echoed["connection"], "keep-alive, x-secret-hop");
}

#[tokio::test]
async fn cors_is_answered_once_at_the_edge() {
    let gw = TestGateway::spawn().await;
    let preflight = gw
        .http
        .request(reqwest::Method::OPTIONS, gw.url("/users"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("sent");
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    let response = gw
        .http
        .get(gw.url("/users"))
        .header("origin", "https://shop.example")
        .bearer_auth(&gw.admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get_all("access-control-allow-origin")
            .iter()
            .count(),
        1
    );
}

#[tokio::test]
async fn a_clients_internal_token_header_is_not_passed_on() {
    let gw = TestGateway::spawn().await;
    let echoed: Value = gw
        .http
        .get(gw.url("/auth/jwks"))
        .header("x-internal-token", "guessed-or-stolen")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(echoed["internal_token"], "");
}
