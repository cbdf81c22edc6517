//! A users service per test, on a loopback port, with its own database and a
//! stand-in JWK set so tests can mint tokens for any role.

use platform::auth::Role;
use platform::settings::ServiceSettings;
use serde_json::{Value, json};
use testkit::TestDatabase;
use testkit::TestIssuer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub issuer: TestIssuer,
    pub admin: String,
    shutdown: CancellationToken,
    // Dropped last: the service's pool dies with the database.
    pub db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn settings(db: &TestDatabase, issuer: &TestIssuer) -> ServiceSettings {
    testkit::service_settings("users", db, issuer.settings.clone())
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with settings adjusted by `adjust` (a broker that is down, say).
    pub async fn spawn_with(adjust: impl FnOnce(&mut ServiceSettings)) -> Self {
        let issuer = TestIssuer::start().await.expect("test JWKS server starts");
        let db = TestDatabase::create("users", users::migrations())
            .await
            .expect("test database is created");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let shutdown = CancellationToken::new();
        let mut settings = settings(&db, &issuer);
        adjust(&mut settings);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(err) = users::run_on(listener, settings, stop).await {
                eprintln!("users service failed: {err:#}");
            }
        });
        let http = reqwest::Client::new();
        testkit::wait_healthy(&base).await;
        let admin = issuer.token(Uuid::now_v7(), Role::Admin);
        Self {
            base,
            http,
            admin,
            issuer,
            shutdown,
            db,
        }
    }

    pub fn token(&self, user_id: Uuid, role: Role) -> String {
        self.issuer.token(user_id, role)
    }

    /// The API behind this harness, sharing its connection pool.
    fn api(&self) -> testkit::Api {
        testkit::Api {
            http: self.http.clone(),
            base: self.base.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.api().get(path, token).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.api().post(path, token, body).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.api().patch(path, token, body).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.api().delete(path, token).await
    }

    /// Creates users through the API as admin and returns them.
    pub async fn create(&self, items: Vec<Value>) -> Vec<Value> {
        let response = self.post("/users", &self.admin, &Value::Array(items)).await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("a JSON array")
    }

    /// Creates one user with `role` and returns its id.
    pub async fn create_one(&self, role: &str) -> Uuid {
        let mut item = user_item("someone");
        item["role"] = json!(role);
        let created = self.create(vec![item]).await;
        id_of(&created[0])
    }
}

/// A valid `POST /users` item with a unique e-mail.
pub fn user_item(name: &str) -> Value {
    json!({
        "name": name,
        "email": format!("{}@example.com", Uuid::now_v7().simple()),
        "phone": "+49 30 1234567",
        "address": {
            "line1": "Unter den Linden 1",
            "city": "Berlin",
            "postal_code": "10117",
            "country": "DE"
        }
    })
}

pub fn id_of(user: &Value) -> Uuid {
    user["user_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a user_id")
}

/// Asserts a problem+json answer with `status` and returns its body.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a problem document");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string());
    body
}
