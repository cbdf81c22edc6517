//! Services under test: their settings, waiting for them, and calling them.

use secrecy::SecretString;

use crate::TestDatabase;

/// Settings for a service under test: its own database, the local Redis and
/// RabbitMQ, queues namespaced by the database so parallel tests never share
/// them, and tokens checked against `auth` (a [`crate::TestIssuer`]'s).
pub fn service_settings(
    name: &'static str,
    db: &TestDatabase,
    auth: platform::settings::AuthSettings,
) -> platform::settings::ServiceSettings {
    platform::settings::ServiceSettings {
        name,
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: db.url.clone(),
        database_pool_size: 4,
        redis_url: "redis://127.0.0.1:6379".into(),
        amqp_url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
        internal_token: SecretString::from("test-internal-token-of-at-least-32-bytes"),
        auth,
        request_timeout: std::time::Duration::from_secs(30),
        broker_namespace: format!("{}.", db.name),
        connections: platform::http::ConnectionLimits::default(),
    }
}

/// Waits (up to 10 s) until `{base}/healthz` answers 200; panics otherwise.
pub async fn wait_healthy(base: &str) {
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(response) = http.get(format!("{base}/healthz")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{base} did not become healthy");
}

/// A client for one service's HTTP API, for tests: each call carries the
/// bearer token given and panics only if the request cannot be sent at all.
#[derive(Clone, Debug)]
pub struct Api {
    /// The underlying client, for requests the shortcuts do not cover.
    pub http: reqwest::Client,
    /// The service's base URL.
    pub base: String,
}

impl Api {
    /// A client for the service at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `method path` with `token` and, when given, a JSON `body`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("the request is sent")
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, path, token, Some(body))
            .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, path, token, None).await
    }
}
