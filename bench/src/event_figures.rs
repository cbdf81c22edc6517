//! How long an event takes from the change that caused it to a consumer.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};
use uuid::Uuid;

/// Milliseconds from `occurred_at` to receipt, for `count` users created one by
/// one through the gateway: (p50, p99, max).
pub async fn event_latency(
    gateway: &str,
    admin: &str,
    count: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    let connection = Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        ConnectionProperties::default(),
    )
    .await?;
    let channel = connection.create_channel().await?;
    let exchange = format!("{}{}", crate::server::BROKER_NAMESPACE, events::EXCHANGE);
    platform::broker::declare_exchange(&channel, &exchange).await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.as_str().into(),
            "user.registered".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let collector = tokio::spawn(async move {
        let mut latencies = Vec::new();
        while latencies.len() < count {
            let Ok(Some(Ok(delivery))) =
                tokio::time::timeout(Duration::from_secs(10), consumer.next()).await
            else {
                break;
            };
            let received = chrono::Utc::now();
            delivery.ack(BasicAckOptions::default()).await.ok();
            let Ok(event) = serde_json::from_slice::<Value>(&delivery.data) else {
                continue;
            };
            let Some(occurred) = event["occurred_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            else {
                continue;
            };
            latencies.push(
                (received - occurred.with_timezone(&chrono::Utc))
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1000.0,
            );
        }
        latencies
    });
    let http = reqwest::Client::new();
    for i in 0..count {
        let user = json!([{
            "name": format!("Event Probe {i}"),
            "email": format!("probe-{}@example.com", Uuid::now_v7().simple()),
            "phone": "+44 20 7946 0000",
            "address": {"line1": "1 Road", "city": "Leeds", "postal_code": "LS1", "country": "GB"}
        }]);
        http.post(format!("{gateway}/users"))
            .bearer_auth(admin)
            .json(&user)
            .send()
            .await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latencies = collector.await?;
    connection.close(200, "done".into()).await.ok();
    anyhow::ensure!(!latencies.is_empty(), "no events arrived");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.99), at(1.0)))
}
