use serde_json::{Value, json};

use crate::helpers::{TestAuth, assert_problem, registration, unique};

#[tokio::test]
async fn registering_creates_a_profile_and_answers_tokens() {
    let app = TestAuth::spawn().await;
    let username = unique("ada");
    let registered = app.register(&username, "lovelace-1815").await;

    assert_eq!(registered["token_type"], "Bearer");
    assert_eq!(registered["expires_in"], 900);
    assert!(registered["refresh_token"].is_string());
    assert_eq!(registered["user"]["role"], "customer");
    let token = registered["access_token"].as_str().expect("token");
    let me: Value = app.me(token).await.json().await.expect("json");
    assert_eq!(me["username"], username.as_str());
    assert_eq!(me["role"], "customer");
    assert_eq!(me["user_id"], registered["user"]["user_id"]);
    let id = registered["user"]["user_id"].as_str().expect("id");
    assert_eq!(
        app.profile(id, token).await.status(),
        200,
        "the users service accepts the token"
    );
    assert_eq!(
        app.users_db
            .count("outbox WHERE event_type = 'user.registered'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_taken_username_is_409_in_any_case() {
    let app = TestAuth::spawn().await;
    let username = unique("grace");
    app.register(&username, "password-1").await;
    let again = app
        .post(
            "/auth/register",
            &registration(&username.to_uppercase(), "password-2"),
        )
        .await;
    let problem = assert_problem(again, 409).await;
    assert_eq!(problem["errors"][0]["field"], "username");
    assert_eq!(app.users_db.count("users").await, 1, "no second profile");
}

#[tokio::test]
async fn a_taken_email_is_409_and_leaves_no_login_behind() {
    let app = TestAuth::spawn().await;
    let first = registration(&unique("first"), "password-1");
    app.post("/auth/register", &first).await;
    let mut second = registration(&unique("second"), "password-2");
    second["email"] = first["email"].clone();

    let problem = assert_problem(app.post("/auth/register", &second).await, 409).await;

    assert_eq!(problem["errors"][0]["field"], "email");
    assert_eq!(app.auth_db.count("user_auth").await, 1);
    assert_eq!(app.users_db.count("users").await, 1);
}

#[tokio::test]
async fn invalid_registrations_are_422_naming_the_field() {
    let app = TestAuth::spawn().await;
    let cases = [
        (registration(&unique("short"), "1234567"), "password"),
        (registration("x", "password-1"), "username"),
        (
            {
                let mut r = registration(&unique("mail"), "password-1");
                r["email"] = json!("nope");
                r
            },
            "email",
        ),
    ];
    for (body, field) in cases {
        let problem = assert_problem(app.post("/auth/register", &body).await, 422).await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
    assert_eq!(app.auth_db.count("user_auth").await, 0);
    assert_eq!(app.users_db.count("users").await, 0);
}

#[tokio::test]
async fn with_the_users_service_down_registration_is_503_and_leaves_nothing() {
    let app = TestAuth::spawn_with(|settings| {
        settings.users_url = "http://127.0.0.1:1".into();
    })
    .await;
    let response = app
        .post(
            "/auth/register",
            &registration(&unique("down"), "password-1"),
        )
        .await;
    assert_problem(response, 503).await;
    assert_eq!(app.auth_db.count("user_auth").await, 0);
}

#[tokio::test]
async fn no_response_or_log_line_holds_a_password_or_hash() {
    let app = TestAuth::spawn().await;
    let password = format!("secret-{}", uuid::Uuid::now_v7().simple());
    let username = unique("quiet");
    let registered = app
        .post("/auth/register", &registration(&username, &password))
        .await
        .text()
        .await
        .expect("body");
    let login = app
        .login(&username, &password)
        .await
        .text()
        .await
        .expect("body");
    let failed = app
        .login(&username, "wrong-password")
        .await
        .text()
        .await
        .expect("body");
    let hash: String = {
        use secrecy::ExposeSecret;
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(app.auth_db.url.expose_secret())
            .await
            .expect("connect");
        sqlx::query_scalar("SELECT password_hash FROM user_auth")
            .fetch_one(&mut conn)
            .await
            .expect("hash")
    };
    for body in [&registered, &login, &failed] {
        assert!(!body.contains(&password) && !body.contains(&hash) && !body.contains("$2b$"));
    }
    let logs = String::from_utf8_lossy(&crate::helpers::logs().lock().expect("logs")).into_owned();
    assert!(logs.contains("listening"), "the logs were captured");
    assert!(!logs.contains(&password), "a password reached the logs");
    assert!(!logs.contains(&hash), "a hash reached the logs");
}
