//! Test support: a fresh, migrated database per test, cloned from a template
//! that is built once per set of migrations.

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnection;
use sqlx::{ConnectOptions, Connection};

use crate::db::{migrate, migrations_fingerprint, quote_ident};

/// The server tests use; `SHOP_TEST_DATABASE_URL` overrides it.
pub fn server_url() -> String {
    std::env::var("SHOP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database that exists for one test and is dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// A URL that connects to it.
    pub url: SecretString,
}

impl TestDatabase {
    /// Clones a fresh database for `service` from its template, building the
    /// template first if these migrations have not been seen before.
    pub async fn create(service: &str, migrations: Migrator) -> anyhow::Result<Self> {
        let server = server_url();
        let template = format!("tpl_{service}_{}", migrations_fingerprint(&migrations));
        let mut admin = admin_connection(&server).await?;
        // One builder at a time across test processes; the others wait here.
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(&template)
            .execute(&mut admin)
            .await?;
        let built = build_template(&mut admin, &server, &template, migrations).await;
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(&template)
            .execute(&mut admin)
            .await?;
        built?;
        let name = format!("test_{service}_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(&template)
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await.ok();
        Ok(Self {
            url: SecretString::from(format!("{}/{name}", server.trim_end_matches('/'))),
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let server = server_url();
        // Drop runs outside async context; a short-lived runtime on its own
        // thread does the DROP so the test's runtime is not blocked or needed.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = admin_connection(&server).await?;
                sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&name)
                ))
                .execute(&mut admin)
                .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

async fn admin_connection(server: &str) -> anyhow::Result<PgConnection> {
    Ok(crate::db::connect_options(server)?
        .database("postgres")
        .disable_statement_logging()
        .connect()
        .await?)
}

async fn build_template(
    admin: &mut PgConnection,
    server: &str,
    template: &str,
    migrations: Migrator,
) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(template)
            .fetch_one(&mut *admin)
            .await?;
    if exists {
        return Ok(());
    }
    // Built under another name and renamed when complete, so a crash midway
    // never leaves a half-migrated template behind.
    let building = format!("{template}_wip");
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(&building)
    ))
    .execute(&mut *admin)
    .await?;
    sqlx::query(&format!("CREATE DATABASE {}", quote_ident(&building)))
        .execute(&mut *admin)
        .await?;
    {
        let url = format!("{}/{building}", server.trim_end_matches('/'));
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(SecretString::from(url).expose_secret())
            .await?;
        migrate(&pool, migrations).await?;
        pool.close().await;
    }
    sqlx::query(&format!(
        "ALTER DATABASE {} RENAME TO {}",
        quote_ident(&building),
        quote_ident(template)
    ))
    .execute(&mut *admin)
    .await?;
    Ok(())
}

/// A TCP forwarder on a loopback port that a test can cut and restore, to take
/// a dependency (Redis, RabbitMQ) away from one service without stopping it for all.
#[derive(Debug)]
pub struct TcpProxy {
    /// The address to point the service at.
    pub addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<tokio_util::sync::CancellationToken>>,
    freezes: std::sync::Arc<std::sync::Mutex<tokio_util::sync::CancellationToken>>,
}

impl TcpProxy {
    /// Forwards a fresh loopback port to `upstream`.
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(
            tokio_util::sync::CancellationToken::new(),
        ));
        let freezes = std::sync::Arc::new(std::sync::Mutex::new(
            tokio_util::sync::CancellationToken::new(),
        ));
        let upstream = upstream.to_owned();
        let (accepting, current) = (up.clone(), connections.clone());
        let current_freeze = freezes.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    // Down: the connection is refused as soon as it is made.
                    continue;
                }
                let stop = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let freeze = current_freeze
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        // Both sockets stay open, relaying nothing, until cut.
                        _ = freeze.cancelled() => stop.cancelled().await,
                    }
                });
            }
        });
        Ok(Self {
            addr,
            up,
            connections,
            freezes,
        })
    }

    /// Drops every connection and refuses new ones, as if the dependency died.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        let mut current = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        current.cancel();
        *current = tokio_util::sync::CancellationToken::new();
    }

    /// Stops relaying on every open connection without closing it, like a
    /// network partition that no reset ever reports; connections made
    /// afterwards relay normally.
    pub fn freeze_open_connections(&self) {
        let mut current = self.freezes.lock().unwrap_or_else(|p| p.into_inner());
        current.cancel();
        *current = tokio_util::sync::CancellationToken::new();
    }

    /// Accepts connections again, as if the dependency came back.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Settings for a service under test: its own database, the local Redis and
/// RabbitMQ, queues namespaced by the database so parallel tests never share
/// them, and tokens checked against `auth` (a [`crate::auth::TestIssuer`]'s).
pub fn service_settings(
    name: &'static str,
    db: &TestDatabase,
    auth: crate::settings::AuthSettings,
) -> crate::settings::ServiceSettings {
    crate::settings::ServiceSettings {
        name,
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: db.url.clone(),
        database_pool_size: 4,
        redis_url: "redis://127.0.0.1:6379".into(),
        amqp_url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
        internal_token: SecretString::from("test-internal-token-of-at-least-32-bytes"),
        auth,
        request_timeout: std::time::Duration::from_secs(30),
        cors_origins: vec!["*".into()],
        broker_namespace: format!("{}.", db.name),
        connections: crate::http::ConnectionLimits::default(),
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
