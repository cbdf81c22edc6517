use serde_json::{Value, json};

use crate::helpers::{TestAuth, assert_problem, unique};

#[tokio::test]
async fn login_answers_a_token_pair_with_the_users_role() {
    let app = TestAuth::spawn().await;
    let username = unique("mary");
    let registered = app.register(&username, "password-1").await;
    let id = registered["user"]["user_id"].as_str().expect("id");
    app.sql(
        &app.users_db,
        &format!("UPDATE users SET role = 'support' WHERE user_id = '{id}'"),
    )
    .await;

    let response = app.login(&username.to_uppercase(), "password-1").await;

    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("json");
    let me: Value = app
        .me(tokens["access_token"].as_str().expect("token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        me["role"], "support",
        "the role comes from the users service at login"
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let app = TestAuth::spawn().await;
    let username = unique("alan");
    app.register(&username, "password-1").await;

    let wrong = assert_problem(app.login(&username, "password-2").await, 401).await;
    let unknown = assert_problem(app.login(&unique("nobody"), "password-1").await, 401).await;

    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn repeated_failures_answer_429_with_retry_after() {
    let app = TestAuth::spawn().await;
    let username = unique("target");
    app.register(&username, "password-1").await;
    for _ in 0..5 {
        assert_eq!(app.login(&username, "nope-nope").await.status(), 401);
    }
    let limited = app.login(&username, "password-1").await;
    assert_eq!(limited.status(), 429, "even the right password waits now");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!(retry_after > 0 && retry_after <= 900);
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    assert_problem(limited, 429).await;
}

#[tokio::test]
async fn failures_from_one_client_are_limited_across_usernames() {
    let app = TestAuth::spawn_with(|settings| settings.auth.login_failures_per_client = 3).await;
    let client = format!("203.0.113.{}", rand_octet());
    for _ in 0..3 {
        let response = app
            .http
            .post(app.url("/auth/login"))
            .header("x-forwarded-for", &client)
            .json(&json!({"username": unique("guess"), "password": "password-1"}))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 401);
    }
    let response = app
        .http
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", &client)
        .json(&json!({"username": unique("guess"), "password": "password-1"}))
        .send()
        .await
        .expect("sent");
    assert_problem(response, 429).await;
}

fn rand_octet() -> u8 {
    (uuid::Uuid::new_v4().as_u128() % 250) as u8 + 1
}

#[tokio::test]
async fn malformed_login_bodies_are_4xx() {
    let app = TestAuth::spawn().await;
    let response = app
        .http
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .expect("sent");
    assert_problem(response, 400).await;
    assert_problem(
        app.post("/auth/login", &json!({"username": 1, "password": []}))
            .await,
        422,
    )
    .await;
}

#[tokio::test]
async fn with_redis_down_logins_work_and_failures_are_still_limited_per_process() {
    let redis = testkit::TcpProxy::start("127.0.0.1:6379")
        .await
        .expect("proxy");
    let redis_url = format!("redis://{}", redis.addr);
    let app = TestAuth::spawn_with(|settings| settings.service.redis_url = redis_url).await;
    let username = unique("steady");
    app.register(&username, "password-1").await;

    redis.cut();

    assert_eq!(app.login(&username, "password-1").await.status(), 200);
    for _ in 0..5 {
        assert_eq!(app.login(&username, "nope-nope").await.status(), 401);
    }
    assert_problem(app.login(&username, "password-1").await, 429).await;
}

#[tokio::test]
async fn a_long_password_in_any_script_counts_to_its_last_character() {
    let app = TestAuth::spawn().await;
    let username = unique("poet");
    let password = "пароль-密码-كلمة".repeat(5);
    assert!(password.chars().count() >= 64);
    app.register(&username, &password).await;

    assert_eq!(app.login(&username, &password).await.status(), 200);
    let mut almost = password.clone();
    almost.pop();
    almost.push('x');
    assert_problem(app.login(&username, &almost).await, 401).await;
}

#[tokio::test]
async fn twenty_wrong_passwords_at_once_meet_the_limit_of_five() {
    let app = TestAuth::spawn().await;
    let username = unique("rushed");
    app.register(&username, "password-1").await;

    let attempts = (0..20).map(|_| app.login(&username, "nope-nope"));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();

    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        15,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_correct_password_is_not_refused_for_other_peoples_failures_from_its_address() {
    let app = TestAuth::spawn_with(|settings| settings.auth.login_failures_per_client = 3).await;
    let client = format!("198.51.100.{}", rand_octet());
    let username = unique("neighbour");
    app.register(&username, "password-1").await;
    let login = |username: String, password: &'static str| {
        app.http
            .post(app.url("/auth/login"))
            .header("x-forwarded-for", client.clone())
            .json(&json!({"username": username, "password": password}))
            .send()
    };
    for _ in 0..5 {
        login(unique("guess"), "password-1").await.expect("sent");
    }
    let wrong = login(unique("guess"), "password-1").await.expect("sent");
    assert_problem(wrong, 429).await;

    let right = login(username, "password-1").await.expect("sent");
    assert_eq!(right.status(), 200);
}
