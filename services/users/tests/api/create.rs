use serde_json::json;

use crate::helpers::{TestApp, problem, user_item};

#[tokio::test]
async fn bulk_create_returns_every_user_with_its_fields() {
    let app = TestApp::spawn().await;
    let mut item = user_item("Ada Lovelace");
    item["email"] = json!("Ada.Lovelace@Example.com");
    item["role"] = json!("support");
    let created = app.create(vec![item, user_item("Grace Hopper")]).await;

    assert_eq!(created.len(), 2);
    let ada = &created[0];
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["email"], "ada.lovelace@example.com");
    assert_eq!(ada["role"], "support");
    assert_eq!(ada["address"]["country"], "DE");
    assert_eq!(created[1]["role"], "customer");
    for user in &created {
        assert!(user["user_id"].is_string() && user["created_at"].is_string());
    }
}

#[tokio::test]
async fn one_bad_item_rolls_back_the_whole_batch_and_is_named() {
    let app = TestApp::spawn().await;
    let mut bad = user_item("Bad");
    bad["email"] = json!("not-an-email");
    let body = json!([user_item("Good"), user_item("Also good"), bad]);

    let response = app.post("/users", &app.admin, &body).await;

    let problem = problem(response, 422).await;
    assert_eq!(problem["errors"][0]["index"], 2);
    assert_eq!(problem["errors"][0]["field"], "email");
    assert_eq!(app.db.count("users").await, 0);
    assert_eq!(app.db.count("outbox").await, 0);
}

#[tokio::test]
async fn every_failing_item_is_reported() {
    let app = TestApp::spawn().await;
    let mut first = user_item("");
    first["phone"] = json!("x");
    let mut third = user_item("Third");
    third["address"]["country"] = json!("Germany");
    let body = json!([first, user_item("ok"), third]);

    let problem = problem(app.post("/users", &app.admin, &body).await, 422).await;

    let reported: Vec<(u64, String)> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().expect("index"),
                e["field"].as_str().expect("field").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reported,
        vec![
            (0, "name".to_owned()),
            (0, "phone".to_owned()),
            (2, "address.country".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_wrong_type_in_one_item_names_that_item() {
    let app = TestApp::spawn().await;
    let mut bad = user_item("Typed");
    bad["role"] = json!("emperor");
    let problem = problem(
        app.post("/users", &app.admin, &json!([user_item("fine"), bad]))
            .await,
        422,
    )
    .await;
    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(app.db.count("users").await, 0);
}

#[tokio::test]
async fn duplicate_email_within_one_batch_is_a_conflict_naming_the_later_item() {
    let app = TestApp::spawn().await;
    let first = user_item("First");
    let mut second = user_item("Second");
    second["email"] = json!(first["email"].as_str().expect("email").to_uppercase());

    let problem = problem(
        app.post(
            "/users",
            &app.admin,
            &json!([first, user_item("Other"), second]),
        )
        .await,
        409,
    )
    .await;

    assert_eq!(problem["errors"][0]["index"], 2);
    assert_eq!(problem["errors"][0]["field"], "email");
    assert_eq!(app.db.count("users").await, 0);
}

#[tokio::test]
async fn duplicate_email_against_the_table_is_a_conflict_naming_the_item() {
    let app = TestApp::spawn().await;
    let existing = user_item("Existing");
    app.create(vec![existing.clone()]).await;
    let mut again = user_item("Again");
    again["email"] = existing["email"].clone();

    let problem = problem(
        app.post("/users", &app.admin, &json!([user_item("New"), again]))
            .await,
        409,
    )
    .await;

    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(app.db.count("users").await, 1);
}

#[tokio::test]
async fn a_thousand_users_are_created_in_one_request() {
    let app = TestApp::spawn().await;
    let items: Vec<_> = (0..1000).map(|i| user_item(&format!("User {i}"))).collect();
    let created = app.create(items).await;
    assert_eq!(created.len(), 1000);
    assert_eq!(app.db.count("users").await, 1000);
    assert_eq!(app.db.count("outbox").await, 1000);
}

#[tokio::test]
async fn more_than_a_thousand_items_or_none_are_refused() {
    let app = TestApp::spawn().await;
    let items: Vec<_> = (0..1001).map(|i| user_item(&format!("User {i}"))).collect();
    problem(app.post("/users", &app.admin, &json!(items)).await, 422).await;
    problem(app.post("/users", &app.admin, &json!([])).await, 422).await;
    assert_eq!(app.db.count("users").await, 0);
}
