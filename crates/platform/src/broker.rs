//! RabbitMQ: a lazily (re)connected connection and a publisher channel with
//! confirms, so a service that starts before the broker keeps working.

use std::time::Duration;

use lapin::options::{ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest AMQP frame asked for, unless the URL names its own
/// (`?frame_max=`). lapin buffers 32 frames each way per connection, so
/// RabbitMQ's default of 128 KiB cost 8 MiB a connection, 84 MB of the
/// 120 MB a whole `shop serve` held at rest with its ten connections. Events
/// are a few KiB; a larger message is sent as several frames.
pub const FRAME_MAX: u32 = 16 * 1024;

/// The broker could not be reached or refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Connecting failed or timed out.
    #[error("cannot reach RabbitMQ ({0}); start it or point SHOP_AMQP_URL at a running broker")]
    Unreachable(String),
    /// An AMQP operation failed.
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
}

struct Live {
    connection: Connection,
    publisher: Channel,
}

/// A shared handle on RabbitMQ; reconnects on demand after the broker goes away.
pub struct Broker {
    url: SecretString,
    exchange: String,
    dead_letters: String,
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

impl Broker {
    /// A handle that connects on first use; `namespace` prefixes the exchange
    /// (and the queues of consumers) of this deployment.
    pub fn new(url: SecretString, namespace: &str) -> Self {
        Self {
            url,
            exchange: format!("{namespace}{}", events::EXCHANGE),
            dead_letters: format!("{namespace}{}", crate::consumer::DEAD_LETTERS),
            live: Mutex::new(None),
        }
    }

    /// The topic exchange this deployment's events go to.
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The dead letter queue of this deployment's consumers.
    pub fn dead_letters(&self) -> &str {
        &self.dead_letters
    }

    /// Opens a fresh connection (for consumers, which own their channels).
    pub async fn connect(&self) -> Result<Connection, BrokerError> {
        let mut uri: lapin::uri::AMQPUri = self
            .url
            .expose_secret()
            .parse()
            .map_err(|err| BrokerError::Unreachable(format!("not an AMQP URL: {err}")))?;
        uri.query.frame_max.get_or_insert(FRAME_MAX);
        let connect = Connection::connect_uri(uri, ConnectionProperties::default());
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| BrokerError::Unreachable("connection timed out".into()))?
            .map_err(|err| BrokerError::Unreachable(err.to_string()))?;
        Ok(connection)
    }

    /// The publisher channel (confirm mode, `shop.events` declared), reconnecting if needed.
    pub async fn publisher(&self) -> Result<Channel, BrokerError> {
        let mut live = self.live.lock().await;
        if let Some(current) = live.as_ref()
            && current.connection.status().connected()
            && current.publisher.status().connected()
        {
            return Ok(current.publisher.clone());
        }
        if let Some(stale) = live.take() {
            // Best effort: the old connection is already broken.
            stale.connection.close(0, "reconnecting".into()).await.ok();
        }
        let connection = self.connect().await?;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_exchange(&publisher, &self.exchange).await?;
        *live = Some(Live {
            connection,
            publisher: publisher.clone(),
        });
        Ok(publisher)
    }

    /// True when a publisher channel is open or can be opened now.
    pub async fn is_ready(&self) -> bool {
        self.publisher().await.is_ok()
    }

    /// Forgets the current connection so the next use reconnects.
    pub async fn reset(&self) {
        if let Some(stale) = self.live.lock().await.take() {
            stale.connection.close(0, "reset".into()).await.ok();
        }
    }
}

/// What this process declared on the broker: a queue or an exchange.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Declared {
    /// A queue, by name.
    Queue(String),
    /// An exchange, by name.
    Exchange(String),
}

/// Every name this process declared. A service declares a handful; tests,
/// which run many deployments in one process under namespaces of their own,
/// remove theirs when they end ([`take_declared`]).
static DECLARED: std::sync::Mutex<std::collections::BTreeSet<Declared>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Notes that `declared` exists on the broker now.
pub fn remember(declared: Declared) {
    DECLARED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(declared);
}

/// Takes (and forgets) every declared name that starts with `prefix`.
pub fn take_declared(prefix: &str) -> Vec<Declared> {
    let mut declared = DECLARED.lock().unwrap_or_else(|p| p.into_inner());
    let taken: Vec<Declared> = declared
        .iter()
        .filter(|d| match d {
            Declared::Queue(name) | Declared::Exchange(name) => name.starts_with(prefix),
        })
        .cloned()
        .collect();
    for d in &taken {
        declared.remove(d);
    }
    taken
}

/// Declares durable queue `name` with `arguments`.
pub async fn declare_queue(
    channel: &Channel,
    name: &str,
    arguments: FieldTable,
) -> Result<(), lapin::Error> {
    channel
        .queue_declare(
            name.into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..lapin::options::QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    remember(Declared::Queue(name.to_owned()));
    Ok(())
}

/// Declares the durable topic exchange `name` (`shop.events`, namespaced).
pub async fn declare_exchange(channel: &Channel, name: &str) -> Result<(), lapin::Error> {
    remember(Declared::Exchange(name.to_owned()));
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}
