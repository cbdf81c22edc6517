use std::process::Command;

use crate::{free_port, gateway, wait_for};

fn probe(url: &str) -> bool {
    Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["probe", url])
        .env("RUST_LOG", "off")
        .output()
        .expect("shop runs")
        .status
        .success()
}

#[tokio::test]
async fn probe_succeeds_on_a_2xx_and_fails_on_anything_else() {
    let port = free_port();
    let mut shop = gateway(port, 0);
    let base = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{base}/healthz"), 200).await;

    assert!(probe(&format!("{base}/healthz")));
    assert!(
        !probe(&format!("{base}/no-such-page")),
        "a 404 is a failure"
    );
    shop.kill().ok();
    shop.wait().ok();
    assert!(!probe(&format!("{base}/healthz")), "nothing listening");
}

#[tokio::test]
async fn the_gateways_public_port_serves_no_metrics_and_its_operator_port_does() {
    let (port, ops) = (free_port(), free_port());
    let mut shop = crate::gateway_with(port, &[("SHOP_GATEWAY_OPS_PORT", &ops.to_string())]);
    wait_for(&format!("http://127.0.0.1:{port}/healthz"), 200).await;
    wait_for(&format!("http://127.0.0.1:{ops}/healthz"), 200).await;

    assert_eq!(
        crate::status(&format!("http://127.0.0.1:{port}/metrics")).await,
        Some(404)
    );
    assert_eq!(
        crate::status(&format!("http://127.0.0.1:{ops}/metrics")).await,
        Some(200)
    );
    shop.kill().ok();
    shop.wait().ok();
}
