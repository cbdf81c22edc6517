//! The `shop` binary as an orchestrator and a container run it.

mod graceful;
mod openapi;
mod probe;
mod secrets_in_logs;
mod slow_clients;

use std::process::{Child, Command};

/// A free loopback port (taken and released; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// `shop serve gateway` alone on `port`, draining `drain_secs` on SIGTERM.
pub fn gateway(port: u16, drain_secs: u64) -> Child {
    gateway_with(
        port,
        &[("SHOP_SHUTDOWN_DRAIN_SECS", &drain_secs.to_string())],
    )
}

/// `shop serve gateway` alone on `port` with these settings (and no
/// operator listener unless they name one: tests run side by side).
pub fn gateway_with(port: u16, settings: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["serve", "gateway"])
        .env("SHOP_GATEWAY_PORT", port.to_string())
        .env("SHOP_GATEWAY_OPS_PORT", "0")
        .envs(settings.iter().copied())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("shop starts")
}

/// The status of a GET, or `None` when nothing answers.
pub async fn status(url: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .ok()?;
    let response = client.get(url).send().await.ok()?;
    Some(response.status().as_u16())
}

/// Waits until `url` answers `want`, up to five seconds.
pub async fn wait_for(url: &str, want: u16) {
    for _ in 0..100 {
        if status(url).await == Some(want) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{url} never answered {want}");
}

/// Waits up to ten seconds for `child` to exit, and says how it did.
pub async fn exited(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(exit) = child.try_wait().expect("wait") {
            return exit;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("did not stop");
}
