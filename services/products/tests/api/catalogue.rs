use platform::auth::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem, id_of, product};

#[tokio::test]
async fn bulk_create_returns_every_product_at_version_one() {
    let app = TestApp::spawn().await;
    let mut shoe = product("Trail Shoe");
    shoe["currency"] = json!("eur");
    shoe["category"] = json!("Shoes");
    shoe["tags"] = json!(["Trail", "trail", "Waterproof"]);
    let created = app.create(vec![shoe, product("Kettle")]).await;

    assert_eq!(created.len(), 2);
    assert_eq!(created[0]["currency"], "EUR");
    assert_eq!(created[0]["category"], "shoes");
    assert_eq!(created[0]["tags"], json!(["trail", "waterproof"]));
    assert_eq!(created[0]["version"], 1);
    assert_eq!(created[0]["attributes"]["colour"], "red");
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM outbox WHERE event_type = 'product.updated'")
            .await,
        2
    );
}

#[tokio::test]
async fn one_bad_item_creates_nothing_and_is_named() {
    let app = TestApp::spawn().await;
    let mut bad = product("Bad");
    bad["stock"] = json!(-1);
    bad["currency"] = json!("EURO");
    let problem = assert_problem(
        app.post("/products", &app.admin, &json!([product("Good"), bad]))
            .await,
        422,
    )
    .await;
    let fields: Vec<(u64, &str)> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().expect("index"),
                e["field"].as_str().expect("field"),
            )
        })
        .collect();
    assert_eq!(fields, vec![(1, "currency"), (1, "stock")]);
    assert_eq!(app.db.scalar("SELECT count(*) FROM products").await, 0);
}

#[tokio::test]
async fn a_duplicate_sku_is_409_with_its_index() {
    let app = TestApp::spawn().await;
    let existing = product("Existing");
    app.create(vec![existing.clone()]).await;
    let mut again = product("Again");
    again["sku"] = existing["sku"].clone();
    let problem = assert_problem(
        app.post("/products", &app.admin, &json!([product("New"), again]))
            .await,
        409,
    )
    .await;
    assert_eq!(problem["errors"][0]["index"], 1);

    let twin = product("Twin");
    let problem = assert_problem(
        app.post("/products", &app.admin, &json!([twin.clone(), twin]))
            .await,
        409,
    )
    .await;
    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(app.db.scalar("SELECT count(*) FROM products").await, 1);
}

#[tokio::test]
async fn only_admins_change_the_catalogue() {
    let app = TestApp::spawn().await;
    let customer = app.issuer.token(Uuid::now_v7(), Role::Customer);
    assert_problem(
        app.post("/products", &customer, &json!([product("x")]))
            .await,
        403,
    )
    .await;
    let response = app
        .http
        .post(app.url("/products"))
        .json(&json!([product("x")]))
        .send()
        .await
        .expect("sent");
    assert_problem(response, 401).await;
    let id = id_of(&app.create(vec![product("Mine")]).await[0]);
    let response = app
        .http
        .delete(app.url(&format!("/products/{id}")))
        .bearer_auth(&customer)
        .send()
        .await
        .expect("sent");
    assert_problem(response, 403).await;
}

#[tokio::test]
async fn anyone_reads_a_product_with_its_etag() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Lamp")]).await[0]);
    let response = app.get(&format!("/products/{id}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["name"], "Lamp");
    assert_eq!(body["version"], 1);
}

#[tokio::test]
async fn bulk_read_lists_missing_ids() {
    let app = TestApp::spawn().await;
    let created = app.create(vec![product("A"), product("B")]).await;
    let unknown = Uuid::now_v7();
    let body = app
        .get_json(&format!(
            "/products?ids={},{unknown},{}",
            id_of(&created[1]),
            id_of(&created[0])
        ))
        .await;
    let names: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["B", "A"]);
    assert_eq!(body["missing"], json!([unknown.to_string()]));
}

#[tokio::test]
async fn a_deleted_product_leaves_reads_lists_and_searches() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Vanishing Vase")]).await[0]);
    app.get(&format!("/products/{id}")).await;
    let response = app
        .http
        .delete(app.url(&format!("/products/{id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204);

    assert_problem(app.get(&format!("/products/{id}")).await, 404).await;
    assert!(crate::helpers::names(&app.get_json("/products").await).is_empty());
    assert!(crate::helpers::names(&app.get_json("/products?q=vase").await).is_empty());
    assert_eq!(
        app.get_json(&format!("/products?ids={id}")).await["missing"],
        json!([id])
    );
    let again = app
        .http
        .delete(app.url(&format!("/products/{id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("sent");
    assert_problem(again, 404).await;
}

#[tokio::test]
async fn bad_queries_and_bodies_are_4xx() {
    let app = TestApp::spawn().await;
    for query in [
        "limit=0",
        "sort=popularity",
        "sort=relevance",
        "min_price=-1",
        "min_price=5&max_price=1",
        "in_stock=maybe",
        "cursor=zzz",
        "color=red",
    ] {
        assert_problem(app.get(&format!("/products?{query}")).await, 400).await;
    }
    assert_problem(app.get("/products/not-a-uuid").await, 400).await;
    let response = app
        .http
        .post(app.url("/products"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("[{")
        .send()
        .await
        .expect("sent");
    assert_problem(response, 400).await;
    let mut wrong = product("x");
    wrong["price_cents"] = json!("cheap");
    assert_problem(
        app.post("/products", &app.admin, &json!([wrong])).await,
        422,
    )
    .await;
}

#[tokio::test]
async fn a_customer_is_refused_403_whatever_the_body_or_path() {
    let app = TestApp::spawn().await;
    let customer = app.issuer.token(Uuid::now_v7(), Role::Customer);
    let malformed = app
        .http
        .post(app.url("/products"))
        .bearer_auth(&customer)
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .expect("sent");
    assert_problem(malformed, 403).await;
    assert_problem(
        app.post("/products", &customer, &json!([{"price_cents": "free"}]))
            .await,
        403,
    )
    .await;
    let bad_path = app
        .http
        .delete(app.url("/products/not-a-uuid"))
        .bearer_auth(&customer)
        .send()
        .await
        .expect("sent");
    assert_problem(bad_path, 403).await;
}
