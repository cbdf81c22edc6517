//! Auth and users services per test, wired as `shop serve` wires them.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use platform::settings::{AuthSettings, ServiceSettings};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::Connection;
use testkit::TestDatabase;
pub use testkit::assert_problem;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestAuth {
    pub base: String,
    pub users_base: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    pub auth_db: TestDatabase,
    pub users_db: TestDatabase,
}

impl Drop for TestAuth {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Every log line any test in this process wrote.
pub fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter("info,auth=debug,users=debug,platform=debug")
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).ok();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `namespace` is the deployment's: users publishes where auth consumes.
fn service_settings(
    name: &'static str,
    db: &TestDatabase,
    auth_base: &str,
    namespace: &str,
) -> ServiceSettings {
    let auth = AuthSettings {
        jwks_url: format!("{auth_base}/auth/jwks"),
        ..AuthSettings::default()
    };
    ServiceSettings {
        internal_token: SecretString::from("auth-tests-internal-token-of-32-bytes-or-more"),
        broker_namespace: namespace.to_owned(),
        ..testkit::service_settings(name, db, auth)
    }
}

impl TestAuth {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut auth::Settings)) -> Self {
        logs();
        let shutdown = CancellationToken::new();
        let auth_db = TestDatabase::create("auth", auth::migrations())
            .await
            .expect("auth db");
        let users_db = TestDatabase::create("users", users::migrations())
            .await
            .expect("users db");
        let auth_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let users_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", auth_listener.local_addr().expect("addr"));
        let users_base = format!("http://{}", users_listener.local_addr().expect("addr"));

        let namespace = format!("{}.", auth_db.name);
        let users_settings = service_settings("users", &users_db, &base, &namespace);
        let stop = shutdown.clone();
        tokio::spawn(async move { users::run_on(users_listener, users_settings, stop).await });

        let mut settings = auth::Settings {
            service: service_settings("auth", &auth_db, &base, &namespace),
            auth: auth::AuthArgs {
                bcrypt_cost: 4,
                // Every test logs in from 127.0.0.1 against one Redis; only the
                // test of the per-client limit sets a real one.
                login_failures_per_client: 1_000_000,
                ..auth::AuthArgs::default()
            },
            users_url: users_base.clone(),
        };
        adjust(&mut settings);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(err) = auth::run_on(auth_listener, settings, stop).await {
                eprintln!("auth failed: {err:#}");
            }
        });
        let http = reqwest::Client::new();
        for target in [&base, &users_base] {
            testkit::wait_healthy(target).await;
        }
        Self {
            base,
            users_base,
            http,
            shutdown,
            auth_db,
            users_db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("sent")
    }

    pub async fn post_bearer(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("sent")
    }

    /// `POST /auth/refresh` with `token` (a JSON value, so tests can send nonsense).
    pub async fn refresh(&self, token: &Value) -> reqwest::Response {
        self.post("/auth/refresh", &json!({"refresh_token": token}))
            .await
    }

    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/auth/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("sent")
    }

    /// Reads the user's own profile from the users service with `token`.
    pub async fn profile(&self, user_id: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/users/{user_id}", self.users_base))
            .bearer_auth(token)
            .send()
            .await
            .expect("sent")
    }

    /// Deletes the user in the users service with `token` (an admin's).
    pub async fn delete_user(&self, user_id: &str, token: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}/users/{user_id}", self.users_base))
            .bearer_auth(token)
            .send()
            .await
            .expect("sent")
    }

    /// Registers a fresh user; returns the whole answer.
    pub async fn register(&self, username: &str, password: &str) -> Value {
        let response = self
            .post("/auth/register", &registration(username, password))
            .await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("json")
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post(
            "/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// An admin's access token (registered, promoted in the users database, logged in).
    pub async fn admin_token(&self) -> String {
        let username = unique("admin");
        let registered = self.register(&username, "admin-password").await;
        let id = registered["user"]["user_id"]
            .as_str()
            .expect("id")
            .to_owned();
        self.sql(
            &self.users_db,
            &format!("UPDATE users SET role = 'admin' WHERE user_id = '{id}'"),
        )
        .await;
        let tokens: Value = self
            .login(&username, "admin-password")
            .await
            .json()
            .await
            .expect("json");
        tokens["access_token"].as_str().expect("token").to_owned()
    }

    pub async fn sql(&self, db: &TestDatabase, sql: &str) -> u64 {
        let mut conn = sqlx::PgConnection::connect(db.url.expose_secret())
            .await
            .expect("connect");
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .expect("sql")
            .rows_affected()
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::now_v7().simple().to_string()[20..])
}

pub fn registration(username: &str, password: &str) -> Value {
    json!({
        "username": username,
        "password": password,
        "email": format!("{}@example.com", Uuid::now_v7().simple()),
        "name": "Test Person"
    })
}
