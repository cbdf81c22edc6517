//! A reviews service per test, beside a real products service on the same
//! broker namespace (so review events reach the product ratings and product
//! events reach reviews), each with its own database, and a stand-in JWK set.

use chrono::{DateTime, Utc};
use events::{
    Envelope, Event, OrderCreated, OrderLine, OrderStatusChanged, UserDeleted, UserProfile,
};
use platform::auth::Role;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::{Api, TestDatabase, TestIssuer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use testkit::assert_problem;

const INTERNAL: &str = "reviews-tests-internal-token-of-32-bytes-or-more";

pub struct TestApp {
    pub reviews: Api,
    pub products: Api,
    pub issuer: TestIssuer,
    pub admin: String,
    /// The broker namespace both services share.
    pub namespace: String,
    shutdown: CancellationToken,
    // Dropped last: the services' pools die with their databases.
    pub db: TestDatabase,
    pub products_db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Where the users service is, for authors no `user.*` event has named yet.
#[derive(Default)]
pub enum Users {
    #[default]
    Away,
    At(String),
}

#[derive(Default)]
pub struct Options {
    pub users: Users,
    /// Reviews cannot reach the catalogue (which still runs and announces
    /// its products).
    pub catalogue_away: bool,
}

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let issuer = TestIssuer::start().await.expect("JWKS");
        let db = TestDatabase::create("reviews", reviews::migrations())
            .await
            .expect("reviews db");
        let products_db = TestDatabase::create("products", products::migrations())
            .await
            .expect("products db");
        let namespace = format!("{}.", db.name);
        let shutdown = CancellationToken::new();
        let settings = |name, db: &TestDatabase| platform::settings::ServiceSettings {
            internal_token: SecretString::from(INTERNAL),
            broker_namespace: namespace.clone(),
            ..testkit::service_settings(name, db, issuer.settings.clone())
        };

        let (listener, products_base) = listen().await;
        let products_settings = products::Settings {
            service: settings("products", &products_db),
            products: products::ProductsArgs::default(),
            // No order holds stock in these tests.
            orders_url: "http://127.0.0.1:1".into(),
        };
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(err) = products::run_on(listener, products_settings, stop).await {
                eprintln!("products failed: {err:#}");
            }
        });

        let (listener, reviews_base) = listen().await;
        let reviews_settings = reviews::Settings {
            service: settings("reviews", &db),
            products_url: if options.catalogue_away {
                "http://127.0.0.1:1".into()
            } else {
                products_base.clone()
            },
            users_url: match options.users {
                Users::Away => "http://127.0.0.1:1".into(),
                Users::At(base) => base,
            },
        };
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(err) = reviews::run_on(listener, reviews_settings, stop).await {
                eprintln!("reviews failed: {err:#}");
            }
        });
        testkit::wait_healthy(&products_base).await;
        testkit::wait_healthy(&reviews_base).await;
        Self {
            reviews: Api::new(&reviews_base),
            products: Api::new(&products_base),
            admin: issuer.token(Uuid::now_v7(), Role::Admin),
            issuer,
            namespace,
            shutdown,
            db,
            products_db,
        }
    }

    /// Publishes `event`; returns its id.
    pub async fn publish(&self, event: Event) -> Uuid {
        self.publish_at(event, Utc::now()).await
    }

    pub async fn publish_at(&self, event: Event, occurred_at: DateTime<Utc>) -> Uuid {
        let mut envelope = Envelope::new("tests", event);
        envelope.occurred_at = occurred_at;
        testkit::publish_event(&self.namespace, &envelope).await;
        envelope.id
    }

    /// Waits until reviews has processed the event `id`.
    pub async fn processed(&self, id: Uuid) {
        self.db
            .eventually(&format!("inbox WHERE event_id = '{id}'"), 1)
            .await;
    }

    /// A customer whose registration reviews has heard of: its id and token.
    pub async fn customer(&self, name: &str) -> (Uuid, String) {
        let user_id = Uuid::now_v7();
        self.publish(Event::UserRegistered(UserProfile {
            user_id,
            email: format!("{}@example.com", user_id.simple()),
            name: name.into(),
            role: "customer".into(),
        }))
        .await;
        self.db
            .eventually(&format!("authors WHERE user_id = '{user_id}'"), 1)
            .await;
        (user_id, self.issuer.token(user_id, Role::Customer))
    }

    /// A product in the catalogue; its id.
    pub async fn product(&self) -> Uuid {
        let item = json!([{
            "sku": format!("SKU-{}", Uuid::now_v7().simple()),
            "name": "Kettle",
            "description": "Boils water.",
            "price_cents": 2599,
            "currency": "EUR",
            "stock": 10,
            "category": "kitchen",
        }]);
        let response = self.products.post("/products", &self.admin, &item).await;
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.expect("json");
        created[0]["product_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("an id")
    }

    pub async fn write(&self, token: &str, product_id: Uuid, body: &Value) -> reqwest::Response {
        self.reviews
            .post(&format!("/products/{product_id}/reviews"), token, body)
            .await
    }

    /// Writes a review that must succeed; returns it.
    pub async fn review(&self, token: &str, product_id: Uuid, rating: i64) -> Value {
        let body = json!({"rating": rating, "title": "My view", "body": "Worth it."});
        let response = self.write(token, product_id, &body).await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("json")
    }

    /// `GET path` on reviews without a token; asserts 200.
    pub async fn read(&self, path: &str) -> Value {
        let response = self
            .reviews
            .http
            .get(self.reviews.url(path))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json")
    }

    pub async fn edit(
        &self,
        token: &str,
        review_id: &str,
        if_match: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .reviews
            .http
            .request(
                Method::PATCH,
                self.reviews.url(&format!("/reviews/{review_id}")),
            )
            .bearer_auth(token)
            .json(body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send().await.expect("sent")
    }

    /// The product as the catalogue shows it.
    pub async fn catalogue(&self, product_id: Uuid) -> Value {
        let response = self
            .products
            .http
            .get(self.products.url(&format!("/products/{product_id}")))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    /// Waits (up to 10 s) until the catalogue's `rating_count` of the product is `count`.
    pub async fn rating_count_becomes(&self, product_id: Uuid, count: i64) -> Value {
        for _ in 0..200 {
            let product = self.catalogue(product_id).await;
            if product["rating_count"] == count {
                return product;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "rating_count of {product_id} never became {count}: {}",
            self.catalogue(product_id).await
        );
    }

    /// A placed order of `product_id` for `user_id`, and (when `delivered`) its delivery.
    pub async fn bought(&self, user_id: Uuid, product_id: Uuid, delivered: bool) -> Uuid {
        let order_id = Uuid::now_v7();
        self.publish(order_created(order_id, user_id, product_id))
            .await;
        if delivered {
            self.publish(status_changed(order_id, user_id, "delivered"))
                .await;
        }
        order_id
    }

    pub async fn user_deleted(&self, user_id: Uuid) {
        self.publish(Event::UserDeleted(UserDeleted { user_id }))
            .await;
    }
}

pub fn order_created(order_id: Uuid, user_id: Uuid, product_id: Uuid) -> Event {
    Event::OrderCreated(OrderCreated {
        order_id,
        user_id,
        items: vec![OrderLine {
            product_id,
            name: "Kettle".into(),
            unit_price_cents: 2599,
            quantity: 1,
        }],
        total_cents: 2599,
        currency: "EUR".into(),
    })
}

pub fn status_changed(order_id: Uuid, user_id: Uuid, to: &str) -> Event {
    Event::OrderStatusChanged(OrderStatusChanged {
        order_id,
        user_id,
        from: "shipped".into(),
        to: to.into(),
        version: 4,
    })
}

pub fn id_of(review: &Value) -> String {
    review["review_id"].as_str().expect("an id").to_owned()
}
