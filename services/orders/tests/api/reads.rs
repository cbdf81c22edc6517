use std::collections::HashSet;

use platform::auth::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestShop, assert_problem, id, items};

#[tokio::test]
async fn an_order_is_seen_by_its_owner_and_staff_and_is_404_to_others() {
    let shop = TestShop::spawn().await;
    let (_, alice) = shop.customer().await;
    let (_, bob) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let order = shop.order(&alice, &[(&products[0], 1)]).await;
    let path = format!("/orders/{}", id(&order));

    assert_eq!(
        shop.get(&path, &alice)
            .await
            .json::<Value>()
            .await
            .expect("json"),
        order
    );
    assert_problem(shop.get(&path, &bob).await, 404).await;
    assert_eq!(
        shop.get(&path, &shop.staff(Role::Support)).await.status(),
        200
    );
    assert_eq!(shop.get(&path, &shop.admin).await.status(), 200);
    assert_problem(
        shop.get(&format!("/orders/{}", Uuid::now_v7()), &shop.admin)
            .await,
        404,
    )
    .await;
    assert_problem(
        shop.http.get(shop.url(&path)).send().await.expect("sent"),
        401,
    )
    .await;
}

#[tokio::test]
async fn bulk_reads_show_a_customer_only_its_own() {
    let shop = TestShop::spawn().await;
    let (_, alice) = shop.customer().await;
    let (_, bob) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let mine = id(&shop.order(&alice, &[(&products[0], 1)]).await);
    let theirs = id(&shop.order(&bob, &[(&products[0], 1)]).await);

    let batch: Value = shop
        .get(&format!("/orders?ids={mine},{theirs}"), &alice)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(batch["data"].as_array().expect("data").len(), 1);
    assert_eq!(batch["missing"], json!([theirs]));
    let batch: Value = shop
        .get(&format!("/orders?ids={mine},{theirs}"), &shop.admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(batch["data"].as_array().expect("data").len(), 2);
}

async fn ids(shop: &TestShop, token: &str, query: &str) -> Vec<String> {
    let response = shop.get(&format!("/orders?{query}"), token).await;
    assert_eq!(response.status(), 200, "{query}");
    let page: Value = response.json().await.expect("json");
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(id)
        .collect()
}

#[tokio::test]
async fn lists_filter_sort_and_keep_customers_to_their_own() {
    let shop = TestShop::spawn().await;
    let (alice_id, alice) = shop.customer().await;
    let (_, bob) = shop.customer().await;
    let products = shop.products(&[100]).await;
    let small = id(&shop.order(&alice, &[(&products[0], 1)]).await);
    let big = id(&shop.order(&alice, &[(&products[0], 5)]).await);
    let bobs = id(&shop.order(&bob, &[(&products[0], 2)]).await);
    shop.patch(
        &format!("/orders/{big}"),
        &shop.admin,
        &json!({"status": "paid"}),
    )
    .await;

    assert_eq!(
        ids(&shop, &alice, "").await,
        vec![big.clone(), small.clone()],
        "newest first, own only"
    );
    assert_eq!(
        ids(&shop, &alice, &format!("user_id={}", Uuid::now_v7())).await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&shop, &shop.admin, "sort=total_cents").await,
        vec![small.clone(), bobs.clone(), big.clone()]
    );
    assert_eq!(
        ids(&shop, &shop.admin, "sort=-total_cents").await,
        vec![big.clone(), bobs.clone(), small.clone()]
    );
    assert_eq!(
        ids(&shop, &shop.admin, "status=paid").await,
        vec![big.clone()]
    );
    assert_eq!(
        ids(
            &shop,
            &shop.admin,
            &format!("user_id={alice_id}&status=created")
        )
        .await,
        vec![small.clone()]
    );
    assert_eq!(
        ids(&shop, &shop.admin, "min_total=2000&max_total=4000").await,
        vec![bobs.clone()]
    );
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(
        ids(&shop, &shop.admin, &format!("created_after={now}")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&shop, &shop.admin, &format!("created_before={now}"))
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn pages_cover_every_order_once() {
    let shop = TestShop::spawn().await;
    let (_, token) = shop.customer().await;
    let products = shop.products(&[500]).await;
    let body: Vec<Value> = (0..25)
        .map(|i| json!({ "items": items(&[(&products[0], 1 + (i % 3))]) }))
        .collect();
    let created: Vec<Value> = shop
        .post("/orders", &token, &Value::Array(body))
        .await
        .json()
        .await
        .expect("json");
    let all: HashSet<String> = created.iter().map(id).collect();
    for sort in ["created_at", "-created_at", "total_cents", "-total_cents"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = match &cursor {
                Some(c) => format!("/orders?limit=4&sort={sort}&cursor={c}"),
                None => format!("/orders?limit=4&sort={sort}"),
            };
            let page: Value = shop.get(&query, &token).await.json().await.expect("json");
            seen.extend(page["data"].as_array().expect("data").iter().map(id));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25, "{sort}");
        assert_eq!(seen.into_iter().collect::<HashSet<_>>(), all, "{sort}");
    }
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let shop = TestShop::spawn().await;
    for query in [
        "status=lost",
        "sort=name",
        "limit=0",
        "min_total=-1",
        "created_after=soon",
        "cursor=x",
        "colour=red",
        "user_id=nope",
    ] {
        assert_problem(
            shop.get(&format!("/orders?{query}"), &shop.admin).await,
            400,
        )
        .await;
    }
}
