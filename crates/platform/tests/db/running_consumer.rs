//! A consumer running against the machine's RabbitMQ in a namespace of its
//! own, stopped and its queues removed when the test drops it.

use std::sync::Arc;

use platform::broker::Broker;
use platform::consumer::{Consumer, Handler, Subscription};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

pub struct RunningConsumer<H> {
    pub namespace: String,
    pub handler: Arc<H>,
    shutdown: CancellationToken,
}

impl<H> Drop for RunningConsumer<H> {
    fn drop(&mut self) {
        self.shutdown.cancel();
        testkit::remove_declared(&self.namespace);
    }
}

impl<H: Handler> RunningConsumer<H> {
    /// Declares `subscription`'s queues in a new namespace named after
    /// `test`, then consumes them with `handler` in the background.
    pub async fn start(test: &str, subscription: Subscription, handler: H) -> Self {
        let namespace = format!("test_{test}_{}.", Uuid::now_v7().simple());
        let broker = Arc::new(Broker::new(SecretString::from(AMQP), &namespace));
        let handler = Arc::new(handler);
        let shutdown = CancellationToken::new();
        let consumer = Consumer {
            subscription,
            namespace: namespace.clone(),
        };
        let consuming =
            platform::consumer::subscribe(broker, consumer, handler.clone(), shutdown.clone())
                .await;
        tokio::spawn(consuming);
        Self {
            namespace,
            handler,
            shutdown,
        }
    }
}
