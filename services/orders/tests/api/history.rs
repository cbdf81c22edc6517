use platform::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestShop, assert_problem, id};

#[tokio::test]
async fn a_users_history_lists_its_orders_newest_first() {
    let shop = TestShop::spawn().await;
    let (user_id, token) = shop.customer().await;
    let products = shop.products(&[10]).await;
    let first = id(&shop.order(&token, &[(&products[0], 1)]).await);
    let second = id(&shop.order(&token, &[(&products[0], 1)]).await);
    for viewer in [token.clone(), shop.staff(Role::Support), shop.admin.clone()] {
        let page: Value = shop
            .get(&format!("/users/{user_id}/orders"), &viewer)
            .await
            .json()
            .await
            .expect("json");
        let seen: Vec<String> = page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(id)
            .collect();
        assert_eq!(seen, vec![second.clone(), first.clone()]);
    }
}

#[tokio::test]
async fn a_user_without_orders_has_an_empty_history() {
    let shop = TestShop::spawn().await;
    let (user_id, token) = shop.customer().await;
    let page: Value = shop
        .get(&format!("/users/{user_id}/orders"), &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page, json!({"data": [], "next_cursor": null}));
}

#[tokio::test]
async fn another_customers_history_is_403() {
    let shop = TestShop::spawn().await;
    let (alice, _) = shop.customer().await;
    let (_, bob) = shop.customer().await;
    assert_problem(shop.get(&format!("/users/{alice}/orders"), &bob).await, 403).await;
}
