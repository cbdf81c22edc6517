use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::auth::{Claims, Role, Signer};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::{TestAuth, assert_problem, unique};

async fn auth_signer(app: &TestAuth) -> Signer {
    let mut conn = sqlx::PgConnection::connect(app.auth_db.url.expose_secret())
        .await
        .expect("connect");
    let (kid, key): (String, Vec<u8>) = sqlx::query_as(
        "SELECT kid, private_key FROM signing_keys ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("a signing key");
    Signer::from_pkcs8(kid, &key).expect("a valid key")
}

fn claims(user_id: Uuid) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: user_id,
        role: Role::Customer,
        jti: Uuid::now_v7(),
        iat: now,
        exp: now + 600,
        iss: "shop-auth".into(),
        aud: "shop".into(),
        sid: None,
    }
}

async fn registered_user(app: &TestAuth) -> (String, Uuid) {
    let registered = app.register(&unique("tok"), "password-1").await;
    let id = registered["user"]["user_id"].as_str().expect("id");
    (id.to_owned(), id.parse().expect("uuid"))
}

/// Refused by the users service (another service) and by auth itself.
async fn assert_refused(app: &TestAuth, id: &str, token: &str) {
    assert_problem(app.profile(id, token).await, 401).await;
    assert_problem(app.me(token).await, 401).await;
}

#[tokio::test]
async fn a_token_signed_with_the_auth_key_is_accepted() {
    let app = TestAuth::spawn().await;
    let (id, user_id) = registered_user(&app).await;
    let token = auth_signer(&app)
        .await
        .sign(&claims(user_id))
        .expect("signed");
    assert_eq!(
        app.profile(&id, &token).await.status(),
        200,
        "the forgery helpers themselves are sound"
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = TestAuth::spawn().await;
    let (id, user_id) = registered_user(&app).await;
    let kid = auth_signer(&app).await.kid().to_owned();
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(user_id)).expect("json"));
    assert_refused(&app, &id, &format!("{header}.{payload}.")).await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let app = TestAuth::spawn().await;
    let (id, user_id) = registered_user(&app).await;
    let jwks: Value = app
        .http
        .get(app.url("/auth/jwks"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let key = &jwks["keys"][0];
    let public = URL_SAFE_NO_PAD
        .decode(key["x"].as_str().expect("x"))
        .expect("base64");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = key["kid"].as_str().map(str::to_owned);
    let token = jsonwebtoken::encode(
        &header,
        &claims(user_id),
        &EncodingKey::from_secret(&public),
    )
    .expect("signed");
    assert_refused(&app, &id, &token).await;
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let app = TestAuth::spawn().await;
    let (id, user_id) = registered_user(&app).await;
    let token = auth_signer(&app)
        .await
        .sign(&claims(user_id))
        .expect("signed");
    let parts: Vec<&str> = token.split('.').collect();
    let mut raised = claims(user_id);
    raised.role = Role::Admin;
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&raised).expect("json")),
        parts[2]
    );
    assert_refused(&app, &id, &forged).await;
}

#[tokio::test]
async fn a_wrong_issuer_or_audience_is_refused() {
    let app = TestAuth::spawn().await;
    let (id, user_id) = registered_user(&app).await;
    let signer = auth_signer(&app).await;
    let mut wrong_issuer = claims(user_id);
    wrong_issuer.iss = "someone-else".into();
    let mut wrong_audience = claims(user_id);
    wrong_audience.aud = "another-app".into();
    for claims in [wrong_issuer, wrong_audience] {
        assert_refused(&app, &id, &signer.sign(&claims).expect("signed")).await;
    }
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestAuth::spawn().await;
    let (id, user_id) = registered_user(&app).await;
    let mut expired = claims(user_id);
    expired.iat -= 3600;
    expired.exp = chrono::Utc::now().timestamp() - 60;
    assert_refused(
        &app,
        &id,
        &auth_signer(&app).await.sign(&expired).expect("signed"),
    )
    .await;
}

#[tokio::test]
async fn a_token_from_an_unknown_key_is_refused() {
    let app = TestAuth::spawn().await;
    let (id, user_id) = registered_user(&app).await;
    let stranger = Signer::generate()
        .expect("key")
        .sign(&claims(user_id))
        .expect("signed");
    assert_refused(&app, &id, &stranger).await;
}

#[tokio::test]
async fn the_jwk_set_publishes_the_signing_key() {
    let app = TestAuth::spawn().await;
    let jwks: Value = app
        .http
        .get(app.url("/auth/jwks"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["kid"], auth_signer(&app).await.kid());
    assert!(key.get("d").is_none(), "no private part");
}
