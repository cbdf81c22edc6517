//! A small shop per test: users, products and orders (one or more replicas
//! of the last two, sharing their databases) behind a gateway.

use std::collections::HashMap;
use std::time::Duration;

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

const INTERNAL: &str = "orders-tests-internal-token-of-32-bytes-or-more";

#[derive(Clone)]
pub struct Options {
    pub replicas: usize,
    pub products_down: bool,
    pub broker_down: bool,
    pub orders: orders::OrdersArgs,
    pub products: products::ProductsArgs,
    /// Orders reach products through a proxy the test can cut.
    pub products_via_proxy: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            replicas: 1,
            products_down: false,
            broker_down: false,
            orders: orders::OrdersArgs::default(),
            products: products::ProductsArgs::default(),
            products_via_proxy: false,
        }
    }
}

pub struct TestShop {
    pub gateway: String,
    pub orders: Vec<String>,
    pub http: reqwest::Client,
    pub issuer: TestIssuer,
    pub admin: String,
    shutdown: CancellationToken,
    pub orders_db: TestDatabase,
    pub products_db: TestDatabase,
    _users_db: TestDatabase,
    /// The orders services' way to products, with `products_via_proxy`.
    pub products_link: Option<TcpProxy>,
}

impl Drop for TestShop {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn settings(
    name: &'static str,
    db: &TestDatabase,
    issuer: &TestIssuer,
    amqp: &str,
) -> ServiceSettings {
    ServiceSettings {
        amqp_url: SecretString::from(amqp.to_owned()),
        internal_token: SecretString::from(INTERNAL),
        database_pool_size: 8,
        ..testkit::service_settings(name, db, issuer.settings.clone())
    }
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

impl TestShop {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let shutdown = CancellationToken::new();
        let issuer = TestIssuer::start().await.expect("JWKS");
        let amqp = if options.broker_down {
            "amqp://guest:guest@127.0.0.1:1/%2f"
        } else {
            "amqp://guest:guest@127.0.0.1:5672/%2f"
        };
        let users_db = TestDatabase::create("users", users::migrations())
            .await
            .expect("db");
        let products_db = TestDatabase::create("products", products::migrations())
            .await
            .expect("db");
        let orders_db = TestDatabase::create("orders", orders::migrations())
            .await
            .expect("db");
        let mut healthy = Vec::new();

        let (users_listener, users_base) = listener().await;
        let users_settings = settings("users", &users_db, &issuer, amqp);
        let stop = shutdown.clone();
        tokio::spawn(async move { users::run_on(users_listener, users_settings, stop).await });
        healthy.push(users_base.clone());

        // Products asks orders about lapsed holds, and orders calls products:
        // every address is bound before either starts.
        let mut orders_listeners = Vec::new();
        for _ in 0..options.replicas {
            orders_listeners.push(listener().await);
        }
        let orders_bases: Vec<String> = orders_listeners.iter().map(|(_, b)| b.clone()).collect();

        let mut products_bases = Vec::new();
        for _ in 0..options.replicas {
            if options.products_down {
                // A port nothing listens on: a released ephemeral port can be
                // taken by another test's service meanwhile.
                products_bases.push("http://127.0.0.1:1".to_owned());
                continue;
            }
            let (listener, base) = listener().await;
            let settings = products::Settings {
                service: settings("products", &products_db, &issuer, amqp),
                products: options.products.clone(),
                orders_url: orders_bases.join(","),
            };
            let stop = shutdown.clone();
            tokio::spawn(async move { products::run_on(listener, settings, stop).await });
            healthy.push(base.clone());
            products_bases.push(base);
        }
        let products_link = if options.products_via_proxy {
            let upstream = products_bases[0].trim_start_matches("http://");
            Some(TcpProxy::start(upstream).await.expect("proxy"))
        } else {
            None
        };
        let products_url = match &products_link {
            Some(proxy) => format!("http://{}", proxy.addr),
            None => products_bases.join(","),
        };

        for (listener, base) in orders_listeners {
            let settings = orders::Settings {
                service: settings("orders", &orders_db, &issuer, amqp),
                products_url: products_url.clone(),
                users_url: users_base.clone(),
                orders: options.orders,
            };
            let stop = shutdown.clone();
            tokio::spawn(async move {
                if let Err(err) = orders::run_on(listener, settings, stop).await {
                    eprintln!("orders failed: {err:#}");
                }
            });
            healthy.push(base);
        }

        let (gateway_listener, gateway) = listener().await;
        let upstreams = HashMap::from([
            ("users", vec![users_base.clone()]),
            ("products", products_bases.clone()),
            ("orders", orders_bases.clone()),
            ("auth", vec!["http://127.0.0.1:1".to_owned()]),
            ("notifications", vec!["http://127.0.0.1:1".to_owned()]),
        ]);
        let gateway_settings = gateway::Settings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            upstreams,
            timeout: Duration::from_secs(30),
            cors_origins: vec!["*".into()],
            connections: platform::http::ConnectionLimits::default(),
            ops_listen: None,
            edge: gateway::Edge::unlimited(),
        };
        let stop = shutdown.clone();
        tokio::spawn(
            async move { gateway::run_on(gateway_listener, gateway_settings, stop).await },
        );
        healthy.push(gateway.clone());

        let http = reqwest::Client::new();
        for base in &healthy {
            testkit::wait_healthy(base).await;
        }
        Self {
            admin: issuer.token(Uuid::now_v7(), Role::Admin),
            gateway,
            orders: orders_bases,
            http,
            issuer,
            shutdown,
            orders_db,
            products_db,
            _users_db: users_db,
            products_link,
        }
    }

    /// The API behind this harness, sharing its connection pool.
    fn api(&self) -> testkit::Api {
        testkit::Api {
            http: self.http.clone(),
            base: self.gateway.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
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

    /// A customer with a profile and an address; returns its id and token.
    pub async fn customer(&self) -> (Uuid, String) {
        let user = json!([{
            "name": "Customer",
            "email": format!("{}@example.com", Uuid::now_v7().simple()),
            "phone": "+44 20 7946 0000",
            "address": {"line1": "1 High St", "city": "Leeds", "postal_code": "LS1", "country": "GB"}
        }]);
        let created: Value = self
            .post("/users", &self.admin, &user)
            .await
            .json()
            .await
            .expect("json");
        let id: Uuid = created[0]["user_id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid");
        (id, self.issuer.token(id, Role::Customer))
    }

    pub fn staff(&self, role: Role) -> String {
        self.issuer.token(Uuid::now_v7(), role)
    }

    /// Products with these stocks (price 1000 each); returns their ids.
    pub async fn products(&self, stocks: &[i64]) -> Vec<String> {
        let items: Vec<Value> = stocks
            .iter()
            .enumerate()
            .map(|(i, stock)| {
                json!({
                    "sku": format!("SKU-{}", Uuid::now_v7().simple()),
                    "name": format!("Product {i}"),
                    "description": "For testing.",
                    "price_cents": 1000 * (i as i64 + 1),
                    "currency": "EUR",
                    "stock": stock,
                    "category": "test"
                })
            })
            .collect();
        let response = self
            .post("/products", &self.admin, &Value::Array(items))
            .await;
        assert_eq!(response.status(), 201);
        let created: Vec<Value> = response.json().await.expect("json");
        created
            .iter()
            .map(|p| p["product_id"].as_str().expect("id").to_owned())
            .collect()
    }

    pub async fn stock(&self, product_id: &str) -> i64 {
        let product: Value = self
            .http
            .get(self.url(&format!("/products/{product_id}")))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        product["stock"].as_i64().expect("stock")
    }

    /// Places one order of `lines` (`(product, quantity)`) as `token`; returns it.
    pub async fn order(&self, token: &str, lines: &[(&str, i64)]) -> Value {
        let response = self
            .post("/orders", token, &json!([{ "items": items(lines) }]))
            .await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        let orders: Vec<Value> = response.json().await.expect("json");
        orders[0].clone()
    }
}

pub fn items(lines: &[(&str, i64)]) -> Value {
    Value::Array(
        lines
            .iter()
            .map(|(id, q)| json!({"product_id": id, "quantity": q}))
            .collect(),
    )
}

pub fn id(value: &Value) -> String {
    value["order_id"].as_str().expect("order_id").to_owned()
}
