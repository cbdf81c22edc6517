use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Options, TestApp, id_of, product};

#[tokio::test]
async fn a_read_after_a_patch_returns_never_sees_the_old_version() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Cached")]).await[0]);
    for version in 1..=10 {
        assert_eq!(
            app.get_json(&format!("/products/{id}")).await["version"],
            version,
            "warm read"
        );
        let response = app
            .patch(
                &id,
                Some(&format!("\"{version}\"")),
                &json!({"price_cents": 100 + version}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let read = app.get_json(&format!("/products/{id}")).await;
        assert_eq!(read["version"], version + 1);
        assert_eq!(read["price_cents"], 100 + version);
    }
}

#[tokio::test]
async fn concurrent_reads_cannot_put_an_old_version_back() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Raced")]).await[0]);
    for version in 1..=5 {
        let path = format!("/products/{id}");
        let tag = format!("\"{version}\"");
        let body = json!({"stock": version});
        let readers = (0..8).map(|_| app.get(&path));
        let write = app.patch(&id, Some(&tag), &body);
        let (_, written) = tokio::join!(futures::future::join_all(readers), write);
        assert_eq!(written.status(), 200);
        assert_eq!(
            app.get_json(&format!("/products/{id}")).await["version"],
            version + 1
        );
    }
}

#[tokio::test]
async fn stock_changes_reach_cached_reads() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Stocked")]).await[0]);
    assert_eq!(app.stock(&id).await, 10);
    let held = app
        .reserve(Uuid::now_v7(), json!([{"product_id": id, "quantity": 4}]))
        .await;
    assert_eq!(held.status(), 201);
    assert_eq!(app.stock(&id).await, 6);
}

#[tokio::test]
async fn with_redis_gone_reads_and_writes_use_postgres() {
    let app = TestApp::spawn_with(Options {
        redis_via_proxy: true,
        ..Options::default()
    })
    .await;
    let id = id_of(&app.create(vec![product("Resilient")]).await[0]);
    app.get_json(&format!("/products/{id}")).await;
    app.redis.as_ref().expect("proxy").cut();

    let started = std::time::Instant::now();
    assert_eq!(
        app.get_json(&format!("/products/{id}")).await["name"],
        "Resilient"
    );
    let response = app
        .patch(&id, Some("\"1\""), &json!({"name": "Still here"}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.get_json(&format!("/products/{id}")).await["name"],
        "Still here"
    );
    assert_eq!(
        app.get_json(&format!("/products?ids={id}")).await["data"][0]["version"],
        2
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "no long waits on a dead cache"
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200, "Redis down must not take replicas out");
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["checks"]["redis"], "unavailable");
}

#[tokio::test]
async fn reads_fill_the_cache_with_the_current_version() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Memorable")]).await[0]);
    let client = redis::Client::open("redis://127.0.0.1:6379").expect("url");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let key = format!("{{shop}}:product:{id}");
    let cached: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("get");
    assert!(cached.expect("creation fills the cache").starts_with("1|"));

    app.patch(&id, Some("\"1\""), &json!({"name": "Renamed"}))
        .await;
    let cached: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("get");
    let cached = cached.expect("a write refreshes the cache");
    assert!(
        cached.starts_with("2|") && cached.contains("Renamed"),
        "{cached}"
    );
}

#[tokio::test]
async fn an_edit_shows_in_the_next_list_at_once() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(vec![product("Listed Lamp")]).await[0]);
    assert_eq!(
        crate::helpers::names(&app.get_json("/products?q=lamp").await),
        vec!["Listed Lamp"]
    );
    assert_eq!(
        crate::helpers::names(&app.get_json("/products?q=lamp").await),
        vec!["Listed Lamp"],
        "served again"
    );
    app.patch(&id, Some("\"1\""), &json!({"name": "Listed Lantern Lamp"}))
        .await;
    assert_eq!(
        crate::helpers::names(&app.get_json("/products?q=lamp").await),
        vec!["Listed Lantern Lamp"]
    );
}

#[tokio::test]
async fn selling_out_leaves_in_stock_lists_at_once() {
    let app = TestApp::spawn().await;
    let mut scarce = product("Scarce");
    scarce["stock"] = json!(1);
    let id = id_of(&app.create(vec![scarce]).await[0]);
    assert_eq!(
        crate::helpers::names(&app.get_json("/products?in_stock=true").await),
        vec!["Scarce"]
    );
    let held = app
        .reserve(Uuid::now_v7(), json!([{"product_id": id, "quantity": 1}]))
        .await;
    assert_eq!(held.status(), 201);
    assert!(crate::helpers::names(&app.get_json("/products?in_stock=true").await).is_empty());
    assert_eq!(
        crate::helpers::names(&app.get_json("/products?in_stock=false").await),
        vec!["Scarce"]
    );
}
