use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, id_of, product};

#[tokio::test]
async fn if_none_match_with_the_current_etag_is_304() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Etagged")]).await[0]);
    let response = app
        .http
        .get(app.url(&format!("/products/{id}")))
        .header("if-none-match", "\"1\"")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let response = app
        .http
        .get(app.url(&format!("/products/{id}")))
        .header("if-none-match", "\"0\"")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_patch_with_if_match_answers_the_next_version() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Before")]).await[0]);
    let response = app
        .patch(
            &id,
            Some("\"1\""),
            &json!({"name": "After", "price_cents": 2500}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["version"], 2);
    assert_eq!(body["name"], "After");
    assert_eq!(body["price_cents"], 2500);
}

#[tokio::test]
async fn a_patch_may_carry_the_version_in_the_body() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Body")]).await[0]);
    let response = app
        .patch(&id, None, &json!({"version": 1, "stock": 3}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.stock(&id).await, 3);
}

#[tokio::test]
async fn a_stale_version_is_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Stale")]).await[0]);
    app.patch(&id, Some("\"1\""), &json!({"name": "First"}))
        .await;
    let problem = assert_problem(
        app.patch(&id, Some("\"1\""), &json!({"name": "Second"}))
            .await,
        412,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("version 2")
    );
    assert_eq!(
        app.get_json(&format!("/products/{id}")).await["name"],
        "First"
    );
}

#[tokio::test]
async fn a_patch_without_a_version_is_428() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Unversioned")]).await[0]);
    assert_problem(app.patch(&id, None, &json!({"name": "x"})).await, 428).await;
}

#[tokio::test]
async fn invalid_patches_are_422() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Strict")]).await[0]);
    assert_problem(
        app.patch(&id, Some("\"1\""), &json!({"stock": -5})).await,
        422,
    )
    .await;
    assert_problem(
        app.patch(&id, Some("\"1\""), &json!({"colour": "blue"}))
            .await,
        422,
    )
    .await;
    assert_problem(app.patch(&id, Some("\"1\""), &json!({})).await, 422).await;
    assert_eq!(app.get_json(&format!("/products/{id}")).await["version"], 1);
}

#[tokio::test]
async fn of_concurrent_patches_on_one_version_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Contested")]).await[0]);
    let attempts = (0..20).map(|i| {
        let (http, url, token) = (
            app.http.clone(),
            app.url(&format!("/products/{id}")),
            app.admin.clone(),
        );
        async move {
            http.patch(url)
                .bearer_auth(token)
                .header("if-match", "\"1\"")
                .json(&json!({"name": format!("Writer {i}")}))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(app.get_json(&format!("/products/{id}")).await["version"], 2);
}
