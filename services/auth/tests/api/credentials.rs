use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestAuth, assert_problem, unique};

async fn create_profiles(app: &TestAuth, admin: &str, n: usize) -> Vec<String> {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "name": format!("Staff {i}"),
                "email": format!("{}@example.com", Uuid::now_v7().simple()),
                "phone": "+44 20 7946 0000",
                "address": {"line1": "1 Road", "city": "London", "postal_code": "N1", "country": "GB"}
            })
        })
        .collect();
    let response = app
        .http
        .post(format!("{}/users", app.users_base))
        .bearer_auth(admin)
        .json(&items)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let created: Vec<Value> = response.json().await.expect("json");
    created
        .iter()
        .map(|u| u["user_id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn an_admin_gives_logins_to_created_users() {
    let app = TestAuth::spawn().await;
    let admin = app.admin_token().await;
    let ids = create_profiles(&app, &admin, 2).await;
    let names = [unique("staff"), unique("staff")];
    let body = json!([
        {"user_id": ids[0], "username": names[0], "password": "password-1"},
        {"user_id": ids[1], "username": names[1], "password": "password-2"}
    ]);

    let response = app.post_bearer("/auth/credentials", &admin, &body).await;

    assert_eq!(response.status(), 201);
    assert_eq!(app.login(&names[1], "password-2").await.status(), 200);
}

#[tokio::test]
async fn one_bad_item_creates_no_login_and_is_named() {
    let app = TestAuth::spawn().await;
    let admin = app.admin_token().await;
    let ids = create_profiles(&app, &admin, 2).await;
    let body = json!([
        {"user_id": ids[0], "username": unique("ok"), "password": "password-1"},
        {"user_id": ids[1], "username": unique("ok"), "password": "short"}
    ]);
    let problem = assert_problem(
        app.post_bearer("/auth/credentials", &admin, &body).await,
        422,
    )
    .await;
    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(problem["errors"][0]["field"], "password");
    assert_eq!(
        app.auth_db.count("user_auth").await,
        1,
        "only the admin's own login"
    );
}

#[tokio::test]
async fn unknown_users_are_named() {
    let app = TestAuth::spawn().await;
    let admin = app.admin_token().await;
    let ids = create_profiles(&app, &admin, 1).await;
    let body = json!([
        {"user_id": ids[0], "username": unique("ok"), "password": "password-1"},
        {"user_id": Uuid::now_v7(), "username": unique("ghost"), "password": "password-1"}
    ]);
    let problem = assert_problem(
        app.post_bearer("/auth/credentials", &admin, &body).await,
        422,
    )
    .await;
    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(problem["errors"][0]["field"], "user_id");
}

#[tokio::test]
async fn taken_usernames_and_existing_logins_are_409_with_indexes() {
    let app = TestAuth::spawn().await;
    let admin = app.admin_token().await;
    let taken = unique("taken");
    let registered = app.register(&taken, "password-1").await;
    let ids = create_profiles(&app, &admin, 1).await;
    let body = json!([
        {"user_id": ids[0], "username": taken.to_uppercase(), "password": "password-1"},
        {"user_id": registered["user"]["user_id"], "username": unique("fresh"), "password": "password-1"}
    ]);
    let problem = assert_problem(
        app.post_bearer("/auth/credentials", &admin, &body).await,
        409,
    )
    .await;
    let indexes: Vec<u64> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(indexes, vec![0, 1]);
}

#[tokio::test]
async fn only_admins_create_logins() {
    let app = TestAuth::spawn().await;
    let customer = app.register(&unique("cust"), "password-1").await;
    let token = customer["access_token"].as_str().expect("token");
    let body =
        json!([{"user_id": Uuid::now_v7(), "username": unique("x"), "password": "password-1"}]);
    assert_problem(
        app.post_bearer("/auth/credentials", token, &body).await,
        403,
    )
    .await;
    assert_problem(app.post("/auth/credentials", &body).await, 401).await;
}
