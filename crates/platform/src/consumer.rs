//! Consuming events from RabbitMQ: a durable queue per consumer bound to the
//! `shop.events` topics it wants, acknowledgement only after the handler's
//! effects are committed, retries with growing delays through one retry queue
//! per delay (a queue whose messages all wait the same time releases them in
//! order, so a short retry never waits behind a long one),
//! the deployment's dead letter queue (`shop.events.dlq`, namespaced) after the last attempt, and
//! reconnection whenever the broker goes away. Handlers deduplicate by event
//! id with [`crate::inbox`], so redelivery changes nothing.

use std::sync::Arc;
use std::time::Duration;

use events::Envelope;
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueBindOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, BrokerError, declare_exchange, declare_queue};

/// Where messages go after their last attempt.
pub const DEAD_LETTERS: &str = "shop.events.dlq";
const ATTEMPTS: &str = "x-attempts";
const ORIGINAL_QUEUE: &str = "x-original-queue";
const LAST_ERROR: &str = "x-last-error";

/// What a consumer listens to and how it treats failures.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The consumer's name; its queue is `<name>.events`.
    pub name: &'static str,
    /// Event types (routing keys) it receives.
    pub events: &'static [&'static str],
    /// One consumer at a time across all replicas (RabbitMQ single active consumer).
    pub single_active: bool,
    /// Messages in flight per consumer. Up to this many (at most eight) are
    /// handled at once, those with the same [`events::Event::subject`] one
    /// after another in arrival order.
    pub prefetch: u16,
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry; each further retry waits twice as long.
    pub first_retry: Duration,
}

/// A subscription as one deployment runs it: its queues carry the deployment's namespace.
#[derive(Debug, Clone)]
pub struct Consumer {
    /// What it listens to.
    pub subscription: Subscription,
    /// The queue prefix of the deployment (usually empty).
    pub namespace: String,
}

impl Consumer {
    /// The consumer's queue.
    pub fn queue(&self) -> String {
        format!("{}{}.events", self.namespace, self.subscription.name)
    }

    /// The queue where retries wait `delay` before going back to the queue.
    fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.retry.{}ms", self.queue(), delay.as_millis())
    }

    /// The delays of every retry a message can get.
    fn retry_delays(&self) -> Vec<Duration> {
        let mut delays: Vec<Duration> = (1..self.subscription.max_attempts.max(1))
            .map(|attempt| self.subscription.delay(attempt))
            .collect();
        delays.dedup();
        delays
    }

    /// The deployment's dead letter queue, shared by its consumers.
    fn dead_letters(&self) -> String {
        format!("{}{DEAD_LETTERS}", self.namespace)
    }
}

impl Subscription {
    fn delay(&self, attempt: u32) -> Duration {
        self.first_retry * 2u32.saturating_pow(attempt.saturating_sub(1).min(16))
    }
}

/// Handles one event; an error asks for a retry.
pub trait Handler: Send + Sync + 'static {
    /// Processes `envelope`, committing its effects before returning `Ok`.
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>>;
}

fn attempts_of(properties: &BasicProperties) -> u32 {
    properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(ATTEMPTS).cloned())
        .and_then(|value| match value {
            AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongUInt(n) => Some(n),
            _ => None,
        })
        .unwrap_or(0)
}

fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(name).cloned())
        .and_then(|value| match value {
            AMQPValue::LongString(text) => {
                Some(String::from_utf8_lossy(text.as_bytes()).into_owned())
            }
            AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
            _ => None,
        })
}

async fn publish_confirmed(
    channel: &Channel,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), BrokerError> {
    let confirm = channel
        .basic_publish(
            "".into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            payload,
            properties.with_delivery_mode(2),
        )
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(_) => Ok(()),
        other => Err(BrokerError::Unreachable(format!(
            "not confirmed: {other:?}"
        ))),
    }
}

/// Declares the consumer's queue, its retry queue and the dead letter queue.
async fn declare(
    channel: &Channel,
    exchange: &str,
    consumer: &Consumer,
) -> Result<(), BrokerError> {
    let subscription = &consumer.subscription;
    declare_exchange(channel, exchange).await?;
    let mut arguments = FieldTable::default();
    if subscription.single_active {
        arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    }
    declare_queue(channel, &consumer.queue(), arguments).await?;
    for event in subscription.events {
        channel
            .queue_bind(
                consumer.queue().as_str().into(),
                exchange.into(),
                (*event).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    // Retries wait out their queue's time there, then dead-letter back to the queue.
    for delay in consumer.retry_delays() {
        let mut retry = FieldTable::default();
        retry.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        retry.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(consumer.queue().into()),
        );
        let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        retry.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        declare_queue(channel, &consumer.retry_queue(delay), retry).await?;
    }
    declare_queue(channel, &consumer.dead_letters(), FieldTable::default()).await?;
    Ok(())
}

/// Declares the consumer's queues now if the broker is there (so every event
/// published once the service is up is kept for it), then returns the
/// consuming loop to spawn. A broker that is away does not hold the service
/// up: the loop declares the queues when it gets through.
pub async fn subscribe(
    broker: Arc<Broker>,
    consumer: Consumer,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let opened = match open(&broker, &consumer).await {
        Ok(opened) => Some(opened),
        Err(err) => {
            tracing::warn!(consumer = consumer.subscription.name, %err, "cannot declare the event queues yet; will when the broker is reachable");
            None
        }
    };
    consume(broker, consumer, handler, shutdown, opened)
}

/// A broker connection with the consumer's queues declared on its channel.
struct Opened {
    connection: Connection,
    channel: Channel,
}

async fn open(broker: &Broker, consumer: &Consumer) -> Result<Opened, BrokerError> {
    let connection = broker.connect().await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(
            consumer.subscription.prefetch.max(1),
            BasicQosOptions::default(),
        )
        .await?;
    declare(&channel, broker.exchange(), consumer).await?;
    Ok(Opened {
        connection,
        channel,
    })
}

/// Consumes until `shutdown`, reconnecting after any broker failure. The
/// message in hand when shutdown comes is finished first.
async fn consume(
    broker: Arc<Broker>,
    consumer: Consumer,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
    mut opened: Option<Opened>,
) {
    let subscription = &consumer.subscription;
    let mut failures = 0u32;
    loop {
        let outcome = async {
            // The first session uses the connection opened at start-up.
            let opened = match opened.take() {
                Some(opened) => opened,
                None => open(&broker, &consumer).await?,
            };
            session(&consumer, opened, handler.clone(), &shutdown).await
        }
        .await;
        match outcome {
            Ok(()) if shutdown.is_cancelled() => return,
            Ok(()) => failures = 0,
            Err(err) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(consumer = subscription.name, %err, "event consumer lost the broker; reconnecting");
                }
            }
        }
        let pause = Duration::from_millis(200 * u64::from(failures.min(25)));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Most messages of one consumer handled at once (never more than its
/// prefetch): enough for a projection to keep up with the orders a replica
/// takes, few enough to leave most of the service's database pool to requests.
const MOST_LANES: u16 = 8;

/// A message taken from the queue, parsed once.
struct Job {
    delivery: lapin::message::Delivery,
    envelope: Result<Envelope, String>,
}

/// Takes messages off the queue and hands each to a lane chosen by its
/// event's subject: lanes work at once, each in arrival order, so two events
/// about one user or one product are never handled out of order or together.
async fn session(
    consumer: &Consumer,
    opened: Opened,
    handler: Arc<dyn Handler>,
    shutdown: &CancellationToken,
) -> Result<(), BrokerError> {
    let subscription = &consumer.subscription;
    let Opened {
        connection,
        channel,
    } = opened;
    let publisher = connection.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            consumer.queue().as_str().into(),
            format!("{}-{}", subscription.name, uuid::Uuid::now_v7())
                .as_str()
                .into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(consumer = subscription.name, queue = %consumer.queue(), "consuming events");

    let stopping = CancellationToken::new();
    let lane_count = subscription.prefetch.clamp(1, MOST_LANES);
    let (failed, mut failures) = mpsc::channel::<BrokerError>(usize::from(lane_count));
    let mut workers = JoinSet::new();
    let lanes: Vec<_> = (0..lane_count)
        .map(|_| {
            let (jobs, queue) = mpsc::unbounded_channel();
            workers.spawn(lane(
                consumer.clone(),
                handler.clone(),
                publisher.clone(),
                queue,
                stopping.clone(),
                failed.clone(),
            ));
            jobs
        })
        .collect();
    drop(failed);

    let result = loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            Some(err) = failures.recv() => break Err(err),
            next = deliveries.next() => next,
        };
        let Some(delivery) = delivery else {
            break Err(BrokerError::Unreachable("the delivery stream ended".into()));
        };
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(err) => break Err(err.into()),
        };
        // A message that is not an event never will be: no point retrying it.
        let envelope = serde_json::from_slice::<Envelope>(&delivery.data)
            .map_err(|err| format!("not an event envelope: {err}"));
        let lane = match &envelope {
            Ok(envelope) => lane_of(envelope.event.subject(), lane_count),
            Err(_) => 0,
        };
        if lanes[lane].send(Job { delivery, envelope }).is_err() {
            // A lane ends early only when its handler panicked.
            break Err(BrokerError::Unreachable("an event handler stopped".into()));
        }
    };
    // The messages in hand are finished; those still waiting in a lane are
    // left unacknowledged, and the broker hands them out again.
    stopping.cancel();
    drop(lanes);
    while workers.join_next().await.is_some() {}
    connection.close(200, "bye".into()).await.ok();
    result
}

fn lane_of(subject: uuid::Uuid, lanes: u16) -> usize {
    // Version 4 and 7 ids end in random bits.
    let (_, random) = subject.as_u64_pair();
    usize::try_from(random % u64::from(lanes)).unwrap_or(0)
}

/// Settles the lane's messages one after another until the session stops.
async fn lane(
    consumer: Consumer,
    handler: Arc<dyn Handler>,
    publisher: Channel,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    stopping: CancellationToken,
    failed: mpsc::Sender<BrokerError>,
) {
    loop {
        let job = tokio::select! {
            biased;
            _ = stopping.cancelled() => return,
            job = jobs.recv() => job,
        };
        let Some(job) = job else { return };
        if let Err(err) = settle(&consumer, handler.as_ref(), &publisher, job).await {
            // Each lane reports at most once, and the channel holds one per lane.
            failed.try_send(err).ok();
            return;
        }
    }
}

/// Handles one message and acknowledges it: after its effects committed, or
/// after it is safely in the retry or dead letter queue.
async fn settle(
    consumer: &Consumer,
    handler: &dyn Handler,
    publisher: &Channel,
    job: Job,
) -> Result<(), BrokerError> {
    let subscription = &consumer.subscription;
    let Job { delivery, envelope } = job;
    let attempts = attempts_of(&delivery.properties) + 1;
    let outcome = match envelope {
        Ok(envelope) => handler
            .handle(&envelope)
            .await
            .map_err(|err| format!("{err:#}")),
        Err(err) => Err(err),
    };
    if let Err(error) = outcome {
        let poison = !serde_json::from_slice::<serde_json::Value>(&delivery.data)
            .is_ok_and(|v| v.get("id").is_some());
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(ATTEMPTS.into(), AMQPValue::LongInt(attempts as i32));
        headers.insert(
            ORIGINAL_QUEUE.into(),
            AMQPValue::LongString(consumer.queue().into()),
        );
        headers.insert(
            LAST_ERROR.into(),
            AMQPValue::LongString(LongString::from(error.clone())),
        );
        let properties = delivery.properties.clone().with_headers(headers);
        if poison || attempts >= subscription.max_attempts {
            tracing::error!(consumer = subscription.name, attempts, %error, "event dead-lettered");
            metrics::counter!("events_dead_lettered_total", "consumer" => subscription.name)
                .increment(1);
            publish_confirmed(
                publisher,
                &consumer.dead_letters(),
                &delivery.data,
                properties,
            )
            .await?;
        } else {
            let delay = subscription.delay(attempts);
            tracing::warn!(consumer = subscription.name, attempts, ?delay, %error, "event failed; will retry");
            publish_confirmed(
                publisher,
                &consumer.retry_queue(delay),
                &delivery.data,
                properties,
            )
            .await?;
        }
    } else {
        metrics::counter!("events_consumed_total", "consumer" => subscription.name).increment(1);
    }
    delivery.ack(BasicAckOptions::default()).await?;
    Ok(())
}

/// Moves every dead-lettered message back to the queue it came from, with a
/// fresh count of attempts. Returns how many were replayed.
pub async fn replay_dead_letters(broker: &Broker) -> Result<usize, BrokerError> {
    let connection = broker.connect().await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    declare_queue(&channel, broker.dead_letters(), FieldTable::default()).await?;
    let mut replayed = 0;
    while let Some(message) = channel
        .basic_get(broker.dead_letters().into(), BasicGetOptions::default())
        .await?
    {
        let delivery = message.delivery;
        let Some(queue) = header_text(&delivery.properties, ORIGINAL_QUEUE) else {
            tracing::warn!("a dead letter names no queue; left in place");
            delivery
                .nack(lapin::options::BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await?;
            break;
        };
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(ATTEMPTS.into(), AMQPValue::LongInt(0));
        let properties = delivery.properties.clone().with_headers(headers);
        publish_confirmed(&channel, &queue, &delivery.data, properties).await?;
        delivery.ack(BasicAckOptions::default()).await?;
        replayed += 1;
    }
    connection.close(200, "bye".into()).await.ok();
    Ok(replayed)
}
