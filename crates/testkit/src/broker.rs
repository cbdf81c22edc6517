//! Removing what a test's services declared on RabbitMQ: every test runs its
//! services under a namespace of its own, and their durable queues and
//! exchanges would otherwise pile up run after run.

use std::time::Duration;

use events::Envelope;
use lapin::options::{BasicPublishOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use platform::broker::{Declared, take_declared};

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Deletes every queue and exchange this process declared under `namespace`.
/// Runs outside async context (from a `Drop`), on a thread of its own.
pub fn remove_declared(namespace: &str) {
    let declared = take_declared(namespace);
    if declared.is_empty() {
        return;
    }
    let removed = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let connect = Connection::connect(AMQP, ConnectionProperties::default());
            let connection = tokio::time::timeout(Duration::from_secs(2), connect).await??;
            let channel = connection.create_channel().await?;
            for item in declared {
                match item {
                    Declared::Queue(name) => {
                        channel
                            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                            .await?;
                    }
                    Declared::Exchange(name) => {
                        channel
                            .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                            .await?;
                    }
                }
            }
            connection.close(200, "test over".into()).await.ok();
            anyhow::Ok(())
        })
    })
    .join();
    if !matches!(removed, Ok(Ok(()))) {
        eprintln!("could not remove the broker queues of {namespace}");
    }
}

/// Publishes `envelope` on the events exchange of `namespace`, as a service's
/// outbox relay would, and waits for the broker's confirmation.
pub async fn publish_event(namespace: &str, envelope: &Envelope) {
    publish_events(namespace, std::slice::from_ref(envelope)).await;
}

/// Publishes `envelopes` in order on one channel, as a service's outbox would.
pub async fn publish_events(namespace: &str, envelopes: &[Envelope]) {
    let connection = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("RabbitMQ is running");
    let channel = connection.create_channel().await.expect("channel");
    let exchange = format!("{namespace}{}", events::EXCHANGE);
    for envelope in envelopes {
        channel
            .basic_publish(
                exchange.as_str().into(),
                envelope.event.event_type().into(),
                BasicPublishOptions::default(),
                &serde_json::to_vec(envelope).expect("an envelope is JSON"),
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    connection.close(200, "done".into()).await.ok();
}
