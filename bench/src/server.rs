//! Running `shop serve` as a child process on scratch ports and database.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

/// A running `shop serve`.
pub struct Server {
    child: Child,
    /// The gateway's base URL.
    pub gateway: String,
    /// The users service's base URL.
    pub users: String,
    /// The products service's base URL.
    pub products: String,
    /// How long it took from spawn until every service answered `/readyz`.
    pub ready_in: Duration,
    /// How long `shop seed` took.
    pub seeded_in: Duration,
}

const GATEWAY_PORT: u16 = 18080;
const USERS_PORT: u16 = 18082;
const AUTH_PORT: u16 = 18081;
const PRODUCTS_PORT: u16 = 18083;
const ORDERS_PORT: u16 = 18084;
const NOTIFICATIONS_PORT: u16 = 18085;
const REVIEWS_PORT: u16 = 18086;
/// The admin the bench logs in as.
pub const ADMIN: &str = "bench-admin";
/// Its password.
pub const ADMIN_PASSWORD: &str = "bench-admin-password";
/// The bench's own exchange and queues on the machine's RabbitMQ, apart from
/// any other deployment there.
pub const BROKER_NAMESPACE: &str = "bench.";
impl Server {
    /// Migrates a scratch database (so start-up is measured on an existing
    /// one), then starts `shop serve` and waits until it is ready.
    pub async fn start(
        shop: &Path,
        bcrypt_cost: u32,
        seed_products: usize,
    ) -> anyhow::Result<Self> {
        let database = "postgres://postgres@127.0.0.1:5432/shop_bench_users";
        let auth_database = "postgres://postgres@127.0.0.1:5432/shop_bench_auth";
        let products_database = "postgres://postgres@127.0.0.1:5432/shop_bench_products";
        let orders_database = "postgres://postgres@127.0.0.1:5432/shop_bench_orders";
        let notifications_database = "postgres://postgres@127.0.0.1:5432/shop_bench_notifications";
        let reviews_database = "postgres://postgres@127.0.0.1:5432/shop_bench_reviews";
        reset_database().await?;
        reset_queues().await?;
        let migrate = Command::new(shop)
            .arg("migrate")
            .env("SHOP_USERS_DATABASE_URL", database)
            .env("SHOP_AUTH_DATABASE_URL", auth_database)
            .env("SHOP_PRODUCTS_DATABASE_URL", products_database)
            .env("SHOP_ORDERS_DATABASE_URL", orders_database)
            .env("SHOP_NOTIFICATIONS_DATABASE_URL", notifications_database)
            .env("SHOP_REVIEWS_DATABASE_URL", reviews_database)
            .stdout(Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(migrate.success(), "shop migrate failed");
        let seeding = Instant::now();
        let seed = Command::new(shop)
            .args(["seed", "--products", &seed_products.to_string()])
            .env("SHOP_PRODUCTS_DATABASE_URL", products_database)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(seed.success(), "shop seed failed");
        let seeded_in = seeding.elapsed();
        let admin = Command::new(shop)
            .args([
                "admin",
                "create",
                "--username",
                ADMIN,
                "--email",
                "bench-admin@example.com",
            ])
            .args(["--password", ADMIN_PASSWORD])
            .env("SHOP_USERS_DATABASE_URL", database)
            .env("SHOP_AUTH_DATABASE_URL", auth_database)
            .env("SHOP_AUTH_BCRYPT_COST", bcrypt_cost.to_string())
            .stdout(Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(admin.success(), "shop admin create failed");

        let started = Instant::now();
        let child = Command::new(shop)
            .arg("serve")
            .env("SHOP_BROKER_NAMESPACE", BROKER_NAMESPACE)
            // One load generator is one client: it would spend any budget at once.
            .env("SHOP_RATE_LIMIT_READS", "0")
            .env("SHOP_GATEWAY_OPS_PORT", "18090")
            .env("SHOP_RATE_LIMIT_WRITES", "0")
            .env("SHOP_RATE_LIMIT_AUTH", "0")
            .env("SHOP_RATE_LIMIT_REGISTRATIONS", "0")
            .env("SHOP_USERS_DATABASE_URL", database)
            .env("SHOP_AUTH_DATABASE_URL", auth_database)
            .env("SHOP_PRODUCTS_DATABASE_URL", products_database)
            .env("SHOP_PRODUCTS_PORT", PRODUCTS_PORT.to_string())
            .env("SHOP_ORDERS_DATABASE_URL", orders_database)
            .env("SHOP_ORDERS_PORT", ORDERS_PORT.to_string())
            .env("SHOP_NOTIFICATIONS_DATABASE_URL", notifications_database)
            .env("SHOP_NOTIFICATIONS_PORT", NOTIFICATIONS_PORT.to_string())
            .env("SHOP_REVIEWS_DATABASE_URL", reviews_database)
            .env("SHOP_REVIEWS_PORT", REVIEWS_PORT.to_string())
            .env(
                "SHOP_MAIL_DIR",
                std::env::temp_dir().join("shop-bench-mail"),
            )
            .env("SHOP_GATEWAY_PORT", GATEWAY_PORT.to_string())
            .env("SHOP_USERS_PORT", USERS_PORT.to_string())
            .env("SHOP_AUTH_PORT", AUTH_PORT.to_string())
            .env("SHOP_AUTH_BCRYPT_COST", bcrypt_cost.to_string())
            .env("SHOP_AUTH_ACCESS_TTL_SECS", "3600")
            .env(
                "SHOP_JWKS_URL",
                format!("http://127.0.0.1:{AUTH_PORT}/auth/jwks"),
            )
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .context("spawning shop serve")?;
        let gateway = format!("http://127.0.0.1:{GATEWAY_PORT}");
        let users = format!("http://127.0.0.1:{USERS_PORT}");
        let products = format!("http://127.0.0.1:{PRODUCTS_PORT}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = async {
                let users_ready = http.get(format!("{users}/readyz")).send().await.ok()?;
                let gateway_ready = http.get(format!("{gateway}/healthz")).send().await.ok()?;
                Some(users_ready.status().is_success() && gateway_ready.status().is_success())
            }
            .await;
            if ready == Some(true) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "shop serve did not become ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Self {
            ready_in: started.elapsed(),
            seeded_in,
            child,
            gateway,
            users,
            products,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    fn status_field(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .context("reading /proc status")
    }

    /// Peak resident memory so far, in KiB.
    pub fn peak_rss_kb(&self) -> anyhow::Result<u64> {
        self.status_field("VmHWM:")
    }

    /// Current resident memory, in KiB.
    pub fn rss_kb(&self) -> anyhow::Result<u64> {
        self.status_field("VmRSS:")
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        self.child.start_kill().ok();
        self.child.wait().await.ok();
    }
}

/// Waits until the consumers have taken every event of the bulk load (the
/// users' welcome mails, above all), collects planner statistics on the
/// bench's users database, then writes what the bulk load dirtied to disk,
/// so that the next scenario measures reads, not the load's aftermath.
/// Returns how long the consumers took to catch up.
pub async fn settle_bulk_load() -> anyhow::Result<Duration> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    // Twice empty in a row: the outbox relay may publish between two looks.
    let mut empty_looks = 0;
    while empty_looks < 2 {
        let waiting: u32 = broker_queues(BROKER_NAMESPACE)
            .await?
            .into_iter()
            .filter(|(name, _)| !name.ends_with(".dlq"))
            .map(|(_, messages)| messages)
            .sum();
        empty_looks = if waiting == 0 { empty_looks + 1 } else { 0 };
        anyhow::ensure!(
            Instant::now() < deadline,
            "{waiting} events still wait for their consumers after the bulk load"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let caught_up = started.elapsed();
    psql("shop_bench_users", "ANALYZE").await?;
    psql("shop_bench_users", "CHECKPOINT").await?;
    Ok(caught_up)
}

pub async fn psql(database: &str, sql: &str) -> anyhow::Result<()> {
    let status = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            database,
            "-qc",
            sql,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "psql failed: {sql}");
    Ok(())
}

/// Deletes the queues an earlier run left. Notifications leave one mail a
/// second, so each run leaves thousands of order confirmations behind; a
/// broker holding the backlog of every earlier run answers slower, and the
/// figures would drift down from run to run.
async fn reset_queues() -> anyhow::Result<()> {
    delete_queues(BROKER_NAMESPACE).await
}

/// The queues under `namespace` on the machine's RabbitMQ, each with the
/// messages it holds. They are listed rather than named: a consumer's retry
/// queues are named after their delays (`<queue>.retry.<ms>ms`), which the
/// services' settings choose.
async fn broker_queues(namespace: &str) -> anyhow::Result<Vec<(String, u32)>> {
    let output = Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "--quiet",
            "--no-table-headers",
            "name",
            "messages",
        ])
        .output()
        .await
        .context("running rabbitmqctl list_queues")?;
    anyhow::ensure!(
        output.status.success(),
        "rabbitmqctl list_queues failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (name, messages) = line.split_once('\t')?;
            name.starts_with(namespace)
                .then(|| (name.to_owned(), messages.trim().parse().unwrap_or(0)))
        })
        .collect())
}

/// Messages waiting for the consumers of `queues` under `namespace`: in each
/// queue and in its retry queues (a missing queue holds none).
pub async fn queued(namespace: &str, queues: &[&str]) -> anyhow::Result<u32> {
    let consumers: Vec<String> = queues.iter().map(|q| format!("{namespace}{q}")).collect();
    Ok(broker_queues(namespace)
        .await?
        .into_iter()
        .filter(|(name, _)| {
            consumers.iter().any(|queue| {
                name == queue
                    || name
                        .strip_prefix(queue.as_str())
                        .is_some_and(|tail| tail.starts_with(".retry."))
            })
        })
        .map(|(_, messages)| messages)
        .sum())
}

/// Deletes every queue under `namespace` on the machine's RabbitMQ.
pub async fn delete_queues(namespace: &str) -> anyhow::Result<()> {
    let queues = broker_queues(namespace).await?;
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .context("connecting to RabbitMQ")?;
    for (name, _) in queues {
        // A channel per queue: deleting a queue that went meanwhile closes it.
        let channel = connection.create_channel().await?;
        channel
            .queue_delete(
                name.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await
            .ok();
    }
    connection.close(0, "".into()).await.ok();
    Ok(())
}

async fn reset_database() -> anyhow::Result<()> {
    for database in [
        "shop_bench_users",
        "shop_bench_auth",
        "shop_bench_products",
        "shop_bench_orders",
        "shop_bench_notifications",
        "shop_bench_reviews",
    ] {
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        )
        .await?;
    }
    Ok(())
}
