//! A users service and one or two notifications services sharing a broker
//! connection the test can cut, and an SMTP sink.

use std::time::Duration;

use platform::auth::Role;
use platform::settings::ServiceSettings;
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::TestIssuer;
use testkit::{TcpProxy, TestDatabase};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::smtp_sink::SmtpSink;

pub struct TestMail {
    pub users: String,
    pub notifications: Vec<String>,
    pub http: reqwest::Client,
    pub issuer: TestIssuer,
    pub admin: String,
    pub sink: SmtpSink,
    pub broker: TcpProxy,
    pub namespace: String,
    instances: Vec<CancellationToken>,
    shutdown: CancellationToken,
    pub db: TestDatabase,
    _users_db: TestDatabase,
}

impl Drop for TestMail {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub struct Options {
    pub instances: usize,
    pub max_attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            instances: 1,
            max_attempts: 5,
        }
    }
}

impl TestMail {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let shutdown = CancellationToken::new();
        let issuer = TestIssuer::start().await.expect("JWKS");
        let db = TestDatabase::create("notifications", notifications::migrations())
            .await
            .expect("db");
        let users_db = TestDatabase::create("users", users::migrations())
            .await
            .expect("db");
        let sink = SmtpSink::start().await;
        let broker = TcpProxy::start("127.0.0.1:5672").await.expect("proxy");
        let namespace = format!("{}.", db.name);
        let settings = |name: &'static str, db: &TestDatabase| ServiceSettings {
            amqp_url: SecretString::from(format!("amqp://guest:guest@{}/%2f", broker.addr)),
            broker_namespace: namespace.clone(),
            ..testkit::service_settings(name, db, issuer.settings.clone())
        };

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let users = format!("http://{}", listener.local_addr().expect("addr"));
        let users_settings = settings("users", &users_db);
        let stop = shutdown.clone();
        tokio::spawn(async move { users::run_on(listener, users_settings, stop).await });

        let mut bases = Vec::new();
        let mut instances = Vec::new();
        for _ in 0..options.instances {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            bases.push(format!("http://{}", listener.local_addr().expect("addr")));
            let config = notifications::Settings {
                service: settings("notifications", &db),
                notifications: notifications::NotificationsArgs {
                    smtp_url: Some(SecretString::from(format!("smtp://{}", sink.addr))),
                    max_attempts: options.max_attempts,
                    mail_max_attempts: options.max_attempts,
                    first_retry_ms: 200,
                    ..notifications::NotificationsArgs::default()
                },
            };
            let stop = shutdown.child_token();
            instances.push(stop.clone());
            tokio::spawn(async move {
                if let Err(err) = notifications::run_on(listener, config, stop).await {
                    eprintln!("notifications failed: {err:#}");
                }
            });
            // The first one started is the active consumer.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let http = reqwest::Client::new();
        for base in bases.iter().chain(std::iter::once(&users)) {
            testkit::wait_healthy(base).await;
        }
        // Let the consumers declare and bind their queues before events flow.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Self {
            admin: issuer.token(Uuid::now_v7(), Role::Admin),
            users,
            notifications: bases,
            http,
            issuer,
            sink,
            broker,
            namespace,
            instances,
            shutdown,
            db,
            _users_db: users_db,
        }
    }

    /// Stops one notifications instance (gracefully, as SIGTERM would).
    pub fn stop_instance(&self, index: usize) {
        self.instances[index].cancel();
    }

    /// Creates users through the users service; returns their (id, e-mail), in order.
    pub async fn register(&self, count: usize) -> Vec<(Uuid, String)> {
        let items: Vec<Value> = (0..count)
            .map(|i| {
                json!({
                    "name": format!("Person {i}"),
                    "email": format!("{}@example.com", Uuid::now_v7().simple()),
                    "phone": "+44 20 7946 0000",
                    "address": {"line1": "1 Road", "city": "Leeds", "postal_code": "LS1", "country": "GB"}
                })
            })
            .collect();
        let response = self
            .http
            .post(format!("{}/users", self.users))
            .bearer_auth(&self.admin)
            .json(&items)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 201);
        let created: Vec<Value> = response.json().await.expect("json");
        created
            .iter()
            .map(|u| {
                (
                    u["user_id"].as_str().expect("id").parse().expect("uuid"),
                    u["email"].as_str().expect("email").to_owned(),
                )
            })
            .collect()
    }

    pub fn token(&self, user_id: Uuid, role: Role) -> String {
        self.issuer.token(user_id, role)
    }

    pub async fn list(&self, query: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/notifications?{query}", self.notifications[0]))
            .bearer_auth(token)
            .send()
            .await
            .expect("sent")
    }
}

/// Every address received exactly one message, and no message came twice.
pub fn once_each(received: &[crate::smtp_sink::Received], addresses: &[String]) {
    for address in addresses {
        let n = received.iter().filter(|m| &m.to == address).count();
        assert_eq!(n, 1, "{address} received {n} mails");
    }
    let mut ids: Vec<&String> = received.iter().map(|m| &m.message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), received.len(), "a Message-ID arrived twice");
}
