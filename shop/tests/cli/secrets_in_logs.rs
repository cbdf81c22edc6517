//! Passwords in the URLs of PostgreSQL, Redis, RabbitMQ and SMTP never reach
//! the output, whether the server is reachable or not, at debug level.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::{free_port, wait_for};

const INTERNAL: &str = "secrets-test-internal-token-of-32-bytes-or-more";

fn notifications(port: u16, settings: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
    command
        .args(["serve", "notifications"])
        .env("SHOP_NOTIFICATIONS_PORT", port.to_string())
        .env("SHOP_INTERNAL_TOKEN", INTERNAL)
        .env(
            "SHOP_MAIL_DIR",
            std::env::temp_dir().join("shop-secrets-test"),
        )
        .env("RUST_LOG", "debug")
        .envs(settings.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A database of its own on the local server, whose URL carries a password
/// (the local server trusts loopback connections, so it is carried, and could
/// be printed, but is not checked). Dropped with the value.
struct ScratchDatabase {
    name: String,
    url: String,
}

impl ScratchDatabase {
    fn new() -> Self {
        let name = format!("test_secrets_{}", uuid::Uuid::now_v7().simple());
        let url = format!("postgres://postgres:s3cret-db@127.0.0.1:5432/{name}");
        Self { name, url }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .status()
            .ok();
    }
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let output = notifications(
        free_port(),
        &[(
            "SHOP_DATABASE_URL",
            "postgres://postgres:s3cret-db@127.0.0.1:1",
        )],
    )
    .output()
    .expect("shop runs");
    assert!(!output.status.success());
    let printed = printed(&output);
    assert!(printed.contains("PostgreSQL"), "{printed}");
    assert!(!printed.contains("s3cret"), "{printed}");
}

#[test]
fn an_unreachable_redis_is_named_without_its_password() {
    let database = ScratchDatabase::new();
    let output = notifications(
        free_port(),
        &[
            ("SHOP_NOTIFICATIONS_DATABASE_URL", &database.url),
            ("SHOP_REDIS_URL", "redis://:s3cret-redis@127.0.0.1:1"),
        ],
    )
    .output()
    .expect("shop runs");
    assert!(!output.status.success());
    let printed = printed(&output);
    assert!(printed.contains("Redis"), "{printed}");
    assert!(!printed.contains("s3cret"), "{printed}");
}

#[tokio::test]
async fn a_running_service_logs_no_password_of_its_broker_database_or_mail_server() {
    let port = free_port();
    let database = ScratchDatabase::new();
    let child = notifications(
        port,
        &[
            ("SHOP_NOTIFICATIONS_DATABASE_URL", &database.url),
            ("SHOP_AMQP_URL", "amqp://guest:s3cret-amqp@127.0.0.1:1/%2f"),
            ("SHOP_SMTP_URL", "smtp://mailer:s3cret-smtp@127.0.0.1:1"),
        ],
    )
    .spawn()
    .expect("shop starts");
    wait_for(&format!("http://127.0.0.1:{port}/readyz"), 200).await;
    // Long enough for a few reconnection attempts to the broker.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let output = child.wait_with_output().expect("output");
    drop(database);

    let printed = printed(&output);
    assert!(
        printed.contains("RabbitMQ") || printed.contains("broker"),
        "the broker's absence is reported: {printed}"
    );
    assert!(!printed.contains("s3cret"), "{printed}");
}
