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

async fn redis_value(key: &str) -> Option<String> {
    let client = redis::Client::open("redis://127.0.0.1:6379").expect("url");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut redis)
        .await
        .expect("get")
}

/// Polls `key` in Redis (seen directly, as another replica sees it) until
/// `accept` holds, for up to `secs` seconds.
async fn redis_eventually(key: &str, secs: u64, accept: impl Fn(Option<&str>) -> bool) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(secs) {
        if accept(redis_value(key).await.as_deref()) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn an_edit_redis_did_not_take_reaches_the_cache_once_it_answers() {
    let app = TestApp::spawn_with(Options {
        redis_via_proxy: true,
        ..Options::default()
    })
    .await;
    let id = id_of(&app.create(vec![product("Before")]).await[0]);
    let key = format!("{{shop}}:product:{id}");
    let proxy = app.redis.as_ref().expect("proxy");
    proxy.cut();
    let response = app
        .patch(&id, Some("\"1\""), &json!({"name": "After"}))
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        redis_value(&key).await.is_some_and(|v| v.starts_with("1|")),
        "while Redis is away from the writer, other replicas see the old entry"
    );
    assert_eq!(
        app.get_json(&format!("/products/{id}")).await["name"],
        "After",
        "the writer itself reads the database meanwhile"
    );

    proxy.restore();
    assert!(
        redis_eventually(&key, 5, |v| v
            .is_some_and(|v| v.starts_with("2|") && v.contains("After")))
        .await,
        "the new version replaced the old one"
    );
}

#[tokio::test]
async fn a_deletion_redis_did_not_take_reaches_the_cache_once_it_answers() {
    let app = TestApp::spawn_with(Options {
        redis_via_proxy: true,
        ..Options::default()
    })
    .await;
    let id = id_of(&app.create(vec![product("Doomed")]).await[0]);
    let key = format!("{{shop}}:product:{id}");
    let proxy = app.redis.as_ref().expect("proxy");
    proxy.cut();
    let response = app
        .http
        .delete(app.url(&format!("/products/{id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204);
    assert_eq!(app.get(&format!("/products/{id}")).await.status(), 404);

    proxy.restore();
    assert!(
        redis_eventually(&key, 5, |v| v.is_some_and(|v| !v.starts_with("1|"))).await,
        "the deletion replaced the cached product"
    );
    assert_eq!(app.get(&format!("/products/{id}")).await.status(), 404);
}

#[tokio::test]
async fn a_list_invalidation_redis_did_not_take_lands_once_it_answers() {
    let app = TestApp::spawn_with(Options {
        redis_via_proxy: true,
        list_cache_ttl_secs: Some(300),
        ..Options::default()
    })
    .await;
    let id = id_of(&app.create(vec![product("Listed")]).await[0]);
    let generation_key = format!("{{shop}}:product-lists:{}:generation", app.db.name);
    let before = redis_value(&generation_key).await;
    let proxy = app.redis.as_ref().expect("proxy");
    proxy.cut();
    app.patch(&id, Some("\"1\""), &json!({"name": "Relisted"}))
        .await;
    assert_eq!(redis_value(&generation_key).await, before);

    proxy.restore();
    assert!(
        redis_eventually(&generation_key, 5, |v| v.map(str::to_owned) != before).await,
        "the lists cached before the edit were dropped"
    );
    assert_eq!(
        crate::helpers::names(&app.get_json("/products?q=relisted").await),
        vec!["Relisted"]
    );
}
