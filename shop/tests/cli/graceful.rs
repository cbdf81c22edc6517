use std::process::Command;
use std::time::{Duration, Instant};

use crate::{exited, free_port, gateway, status, wait_for};

fn sigterm(pid: u32) {
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

#[tokio::test]
async fn sigterm_fails_readiness_first_keeps_serving_through_the_drain_then_exits() {
    let port = free_port();
    let mut shop = gateway(port, 2);
    let base = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{base}/readyz"), 200).await;

    let stopped = Instant::now();
    sigterm(shop.id());
    wait_for(&format!("{base}/readyz"), 503).await;
    assert_eq!(
        status(&format!("{base}/healthz")).await,
        Some(200),
        "still serving while the balancer drains it"
    );
    let exit = exited(&mut shop).await;
    assert!(exit.success(), "{exit}");
    assert!(
        stopped.elapsed() >= Duration::from_millis(1900),
        "stopped before its drain period: {:?}",
        stopped.elapsed()
    );
    assert_eq!(status(&format!("{base}/healthz")).await, None);
}

#[tokio::test]
async fn a_second_sigterm_ends_the_drain_at_once() {
    let port = free_port();
    let mut shop = gateway(port, 60);
    let base = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{base}/readyz"), 200).await;

    sigterm(shop.id());
    wait_for(&format!("{base}/readyz"), 503).await;
    sigterm(shop.id());
    let exit = exited(&mut shop).await;
    assert!(exit.success(), "{exit}");
}
