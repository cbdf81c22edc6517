//! A products service per test, with its own database, a stand-in JWK set,
//! and (when asked) Redis behind a proxy the test can cut.

use platform::auth::Role;
use platform::settings::ServiceSettings;
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::TestIssuer;
pub use testkit::assert_problem;
use testkit::{TcpProxy, TestDatabase};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const INTERNAL: &str = "products-tests-internal-token-of-32-bytes-or-more";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub admin: String,
    pub issuer: TestIssuer,
    pub redis: Option<TcpProxy>,
    shutdown: CancellationToken,
    pub db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Default)]
pub struct Options {
    pub redis_via_proxy: bool,
    /// The orders service cannot be reached: lapsed holds cannot be settled.
    pub orders_away: bool,
    pub reservation_ttl_secs: Option<u64>,
    /// `Some(0)` turns the list cache, and with it the match cache, off.
    pub list_cache_ttl_secs: Option<u64>,
}

/// A stand-in for the orders service in a shop that has no orders yet: every
/// lapsed hold it is asked about is one no order uses. (The real exchange is
/// tested in the orders service's tests, with both services.)
async fn orders_with_no_orders() -> String {
    async fn lapsed(axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
        axum::Json(json!({ "confirm": [], "release": body["reservation_ids"] }))
    }
    let app =
        axum::Router::new().route("/internal/reservations/lapsed", axum::routing::post(lapsed));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let issuer = TestIssuer::start().await.expect("JWKS");
        let db = TestDatabase::create("products", products::migrations())
            .await
            .expect("db");
        let redis = if options.redis_via_proxy {
            Some(TcpProxy::start("127.0.0.1:6379").await.expect("proxy"))
        } else {
            None
        };
        let redis_url = match &redis {
            Some(proxy) => format!("redis://{}", proxy.addr),
            None => "redis://127.0.0.1:6379".into(),
        };
        let orders_url = if options.orders_away {
            "http://127.0.0.1:1".to_owned()
        } else {
            orders_with_no_orders().await
        };
        let settings = products::Settings {
            orders_url,
            service: ServiceSettings {
                redis_url,
                internal_token: SecretString::from(INTERNAL),
                database_pool_size: 8,
                ..testkit::service_settings("products", &db, issuer.settings.clone())
            },
            products: products::ProductsArgs {
                reservation_ttl_secs: options.reservation_ttl_secs.unwrap_or(300),
                expiry_interval_secs: 1,
                cache_ttl_secs: 300,
                list_cache_ttl_secs: options.list_cache_ttl_secs.unwrap_or(10),
                search_cache_mb: 32,
            },
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(err) = products::run_on(listener, settings, stop).await {
                eprintln!("products failed: {err:#}");
            }
        });
        let http = reqwest::Client::new();
        testkit::wait_healthy(&base).await;
        Self {
            admin: issuer.token(Uuid::now_v7(), Role::Admin),
            base,
            http,
            issuer,
            redis,
            shutdown,
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("sent")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("sent")
    }

    pub async fn patch(&self, id: &str, if_match: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self
            .http
            .patch(self.url(&format!("/products/{id}")))
            .bearer_auth(&self.admin)
            .json(body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send().await.expect("sent")
    }

    /// Creates products as admin and returns them.
    pub async fn create(&self, items: Vec<Value>) -> Vec<Value> {
        let response = self
            .post("/products", &self.admin, &Value::Array(items))
            .await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("json")
    }

    pub async fn internal(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header(platform::internal::HEADER, INTERNAL)
            .json(body)
            .send()
            .await
            .expect("sent")
    }

    pub async fn reserve(&self, reservation_id: Uuid, items: Value) -> reqwest::Response {
        self.internal(
            "/internal/reservations",
            &json!({"reservation_id": reservation_id, "items": items}),
        )
        .await
    }

    pub async fn stock(&self, id: &str) -> i64 {
        self.get_json(&format!("/products/{id}")).await["stock"]
            .as_i64()
            .expect("stock")
    }
}

/// A valid `POST /products` item with a unique SKU.
pub fn product(name: &str) -> Value {
    json!({
        "sku": format!("SKU-{}", Uuid::now_v7().simple()),
        "name": name,
        "description": format!("A fine {name}."),
        "price_cents": 1999,
        "currency": "EUR",
        "stock": 10,
        "category": "misc",
        "tags": ["new"],
        "attributes": {"colour": "red"}
    })
}

pub fn id_of(product: &Value) -> String {
    product["product_id"].as_str().expect("id").to_owned()
}

pub fn names(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}
