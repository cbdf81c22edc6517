use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{free_port, gateway_with, wait_for};

/// Everything the server sends until it closes, or until `limit` passes.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut received)).await;
    matches!(read, Ok(Ok(_)) | Ok(Err(_))).then_some(received)
}

#[tokio::test]
async fn a_client_sending_its_headers_a_line_at_a_time_is_cut_off() {
    let port = free_port();
    let mut shop = gateway_with(port, &[("SHOP_HEADER_READ_TIMEOUT_SECS", "1")]);
    wait_for(&format!("http://127.0.0.1:{port}/healthz"), 200).await;

    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n")
        .await
        .expect("first line");
    for line in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        if stream
            .write_all(format!("X-Slow-{line}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server closed the connection");
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "a request whose headers never ended was not served"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    shop.kill().ok();
    shop.wait().ok();
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let port = free_port();
    let mut shop = gateway_with(port, &[("SHOP_HEADER_READ_TIMEOUT_SECS", "1")]);
    wait_for(&format!("http://127.0.0.1:{port}/healthz"), 200).await;

    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .expect("request");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.expect("an answer");
    assert_eq!(&head[9..12], b"200");

    let idle = Instant::now();
    read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("closed after the idle timeout");
    assert!(
        idle.elapsed() < Duration::from_secs(4),
        "{:?}",
        idle.elapsed()
    );
    shop.kill().ok();
    shop.wait().ok();
}

#[tokio::test]
async fn past_the_connection_cap_a_new_client_waits_until_one_closes() {
    let port = free_port();
    let mut shop = gateway_with(port, &[("SHOP_MAX_CONNECTIONS", "2")]);
    wait_for(&format!("http://127.0.0.1:{port}/healthz"), 200).await;
    // The probes above closed their connections; give the server a moment to see it.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let first = TcpStream::connect(("127.0.0.1", port)).await.expect("1");
    let _second = TcpStream::connect(("127.0.0.1", port)).await.expect("2");
    let mut third = TcpStream::connect(("127.0.0.1", port)).await.expect("3");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .expect("request");
    let mut head = [0u8; 12];
    let waiting =
        tokio::time::timeout(Duration::from_millis(700), third.read_exact(&mut head)).await;
    assert!(waiting.is_err(), "two connections already hold both slots");

    drop(first);
    tokio::time::timeout(Duration::from_secs(5), third.read_exact(&mut head))
        .await
        .expect("served once a slot is free")
        .expect("an answer");
    assert_eq!(&head[9..12], b"200");
    shop.kill().ok();
    shop.wait().ok();
}
