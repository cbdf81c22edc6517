//! Removing what a test's services declared on RabbitMQ: every test runs its
//! services under a namespace of its own, and their durable queues and
//! exchanges would otherwise pile up run after run.

use std::time::Duration;

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
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
