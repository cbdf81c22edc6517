//! A gateway in front of a real users service and of small echo services that
//! report what reached them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use platform::auth::Role;
use serde_json::json;
use testkit::TestDatabase;
use testkit::TestIssuer;
pub use testkit::assert_problem;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestGateway {
    pub base: String,
    pub http: reqwest::Client,
    pub admin: String,
    /// Mints tokens the gateway and users accept.
    pub issuer: TestIssuer,
    /// Requests that reached the echo upstreams.
    pub echo_hits: Arc<AtomicUsize>,
    shutdown: CancellationToken,
    _db: TestDatabase,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An upstream that answers every request with what it received.
async fn echo_server(hits: Arc<AtomicUsize>, shutdown: CancellationToken) -> String {
    let app = Router::new().fallback(move |req: Request| {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            axum::Json(json!({
                "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or_default(),
                "method": req.method().as_str(),
                "request_id": header("x-request-id"),
                "authorization": header("authorization"),
                "connection": header("connection"),
                "internal_token": header("x-internal-token"),
                "forwarded_for": header("x-forwarded-for"),
            }))
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .ok();
    });
    format!("http://{addr}")
}

/// A loopback address nothing listens on (port 1: a released ephemeral port
/// could be taken by another test's server meanwhile).
async fn closed_port() -> String {
    "http://127.0.0.1:1".to_owned()
}

impl TestGateway {
    /// users is real; auth, orders and reviews echo; products and notifications are down.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`TestGateway::spawn`], with the edge adjusted (its Redis prefix
    /// is this test's own and its tokens are checked against this issuer).
    pub async fn spawn_with(adjust: impl FnOnce(&mut gateway::Edge)) -> Self {
        let shutdown = CancellationToken::new();
        let issuer = TestIssuer::start().await.expect("JWKS");
        let db = TestDatabase::create("users", users::migrations())
            .await
            .expect("db");
        let users_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let users_base = format!("http://{}", users_listener.local_addr().expect("addr"));
        let settings = testkit::service_settings("users", &db, issuer.settings.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move { users::run_on(users_listener, settings, stop).await });

        let echo_hits = Arc::new(AtomicUsize::new(0));
        let echo = echo_server(echo_hits.clone(), shutdown.clone()).await;
        let down = closed_port().await;
        let upstreams: HashMap<&'static str, Vec<String>> = HashMap::from([
            ("users", vec![users_base.clone()]),
            ("auth", vec![echo.clone()]),
            ("orders", vec![echo.clone()]),
            ("reviews", vec![echo]),
            ("products", vec![down.clone()]),
            ("notifications", vec![down]),
        ]);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let gateway_settings = gateway::Settings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            upstreams,
            timeout: Duration::from_secs(5),
            cors_origins: vec!["*".into()],
            connections: platform::http::ConnectionLimits::default(),
            ops_listen: None,
            edge: {
                let mut edge = gateway::Edge::unlimited();
                edge.redis_url = "redis://127.0.0.1:6379".into();
                edge.key_prefix = db.name.clone();
                edge.auth = issuer.settings.clone();
                adjust(&mut edge);
                edge
            },
        };
        let stop = shutdown.clone();
        tokio::spawn(async move { gateway::run_on(listener, gateway_settings, stop).await });

        let http = reqwest::Client::new();
        for target in [&base, &users_base] {
            testkit::wait_healthy(target).await;
        }
        Self {
            base,
            http,
            admin: issuer.token(Uuid::now_v7(), Role::Admin),
            issuer,
            echo_hits,
            shutdown,
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("sent")
    }
}
