//! The transactional outbox: an event is written in the same transaction as
//! the change it announces, and a relay publishes it to RabbitMQ afterwards.

use std::sync::Arc;
use std::time::Duration;

use events::Envelope;
use lapin::BasicProperties;
use lapin::Confirmation;
use lapin::options::BasicPublishOptions;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::broker::Broker;

/// Rows one relay pass claims.
const BATCH: i64 = 200;
/// How often the relay looks for work nobody told it about (other replicas' rows, retries).
const POLL: Duration = Duration::from_millis(500);
/// Longest wait between two attempts at a failing row.
const MAX_BACKOFF_SECS: i64 = 300;
/// How long published rows are kept for inspection.
const RETENTION_DAYS: i64 = 7;

/// The head of an insert into the outbox, followed by a query of `(id, type,
/// envelope)` rows: for a statement that builds its events from the rows it
/// writes, so the change and its announcement need one round trip.
pub const INSERT: &str = "INSERT INTO outbox (id, event_type, payload)";

/// Writes events into the caller's transaction and wakes the relay after commit.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    /// Adds `envelopes` to the outbox inside `txn` (any connection or transaction).
    pub async fn enqueue<C: ConnectionTrait>(
        &self,
        txn: &C,
        envelopes: &[Envelope],
    ) -> Result<(), DbErr> {
        if let Some(insert) = Self::insert(envelopes)? {
            txn.execute(insert).await?;
        }
        Ok(())
    }

    /// The statement that adds `envelopes` to the outbox, for callers that
    /// send it with other writes ([`crate::writes::Writes`]); `None` for none.
    pub fn insert(envelopes: &[Envelope]) -> Result<Option<Statement>, DbErr> {
        if envelopes.is_empty() {
            return Ok(None);
        }
        let mut ids = Vec::with_capacity(envelopes.len());
        let mut types = Vec::with_capacity(envelopes.len());
        let mut payloads = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            ids.push(envelope.id);
            types.push(envelope.event.event_type().to_owned());
            payloads.push(
                serde_json::to_value(envelope)
                    .map_err(|err| DbErr::Custom(format!("event does not serialise: {err}")))?,
            );
        }
        // One statement for the whole batch, however large the bulk request.
        Ok(Some(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("{INSERT} SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::jsonb[])"),
            [ids.into(), types.into(), payloads.into()],
        )))
    }

    /// Tells this process's relay that committed rows are waiting.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Runs the relay until `shutdown`; safe to run on every replica at once.
    pub async fn relay(
        self,
        db: DatabaseConnection,
        broker: Arc<Broker>,
        shutdown: CancellationToken,
    ) {
        let mut failures: u32 = 0;
        let mut passes: u64 = 0;
        let mut woken = false;
        let mut passes_over_rows = crate::jobs::Passes::new(POLL);
        loop {
            match relay_once(&db, &broker, passes_over_rows.next(woken)).await {
                // A full batch: more rows are waiting now.
                Ok(n) if n as i64 >= BATCH => {
                    failures = 0;
                    continue;
                }
                // Rows committed meanwhile have woken it: they gather first.
                Ok(_) => failures = 0,
                Err(err) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(%err, failures, "outbox relay cannot publish; will retry");
                    }
                    broker.reset().await;
                }
            }
            passes += 1;
            if passes.is_multiple_of(1200) {
                prune(&db).await;
            }
            let pause = if failures == 0 {
                POLL
            } else {
                Duration::from_millis(250 * 2u64.pow(failures.min(5)))
            };
            woken = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {
                    tokio::time::sleep(crate::jobs::GATHER).await;
                    failures == 0
                }
                _ = tokio::time::sleep(pause) => false,
            };
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
}

/// Claims a batch of due rows written in the last `lookback_secs`, publishes
/// them with confirms, and marks the outcome. Returns how many were published.
async fn relay_once(
    db: &DatabaseConnection,
    broker: &Broker,
    lookback_secs: f64,
) -> Result<usize, RelayError> {
    // Publishing twice after a lost commit is absorbed by consumers.
    let txn = crate::jobs::bookkeeping_transaction(db).await?;
    let rows = txn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, event_type, payload::text AS payload, attempts FROM outbox
             WHERE published_at IS NULL AND next_attempt_at <= now()
               AND created_at > now() - make_interval(secs => $2)
             ORDER BY created_at, id
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
            [BATCH.into(), lookback_secs.into()],
        ))
        .await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(0);
    }
    let channel = broker.publisher().await;
    let mut published: Vec<Uuid> = Vec::with_capacity(rows.len());
    let mut failed: Vec<(Uuid, i32, String)> = Vec::new();
    match channel {
        Ok(channel) => {
            let mut pending = Vec::with_capacity(rows.len());
            for row in &rows {
                let id: Uuid = row.try_get("", "id")?;
                let event_type: String = row.try_get("", "event_type")?;
                let payload: String = row.try_get("", "payload")?;
                let attempts: i32 = row.try_get("", "attempts")?;
                let properties = BasicProperties::default()
                    .with_message_id(id.to_string().into())
                    .with_content_type("application/json".into())
                    .with_type(event_type.clone().into())
                    .with_delivery_mode(2);
                let confirm = channel
                    .basic_publish(
                        broker.exchange().into(),
                        event_type.into(),
                        BasicPublishOptions::default(),
                        payload.as_bytes(),
                        properties,
                    )
                    .await;
                pending.push((id, attempts, confirm));
            }
            for (id, attempts, confirm) in pending {
                let outcome = match confirm {
                    Ok(confirm) => confirm.await,
                    Err(err) => Err(err),
                };
                match outcome {
                    Ok(Confirmation::Ack(_)) => published.push(id),
                    Ok(other) => failed.push((id, attempts, format!("not confirmed: {other:?}"))),
                    Err(err) => failed.push((id, attempts, err.to_string())),
                }
            }
        }
        Err(err) => {
            for row in &rows {
                failed.push((
                    row.try_get("", "id")?,
                    row.try_get("", "attempts")?,
                    err.to_string(),
                ));
            }
        }
    }
    if !published.is_empty() {
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1)",
            [published.clone().into()],
        ))
        .await?;
        metrics::counter!("outbox_published_total").increment(published.len() as u64);
    }
    for (id, attempts, error) in &failed {
        let backoff = (1i64 << (*attempts).clamp(0, 9)).min(MAX_BACKOFF_SECS);
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                    next_attempt_at = now() + make_interval(secs => $3)
             WHERE id = $1",
            [(*id).into(), error.clone().into(), (backoff as f64).into()],
        ))
        .await?;
    }
    txn.commit().await?;
    if !failed.is_empty() {
        metrics::counter!("outbox_publish_failures_total").increment(failed.len() as u64);
        let first = failed
            .first()
            .map(|(_, _, e)| e.clone())
            .unwrap_or_default();
        return Err(RelayError::Broker(crate::broker::BrokerError::Unreachable(
            first,
        )));
    }
    Ok(published.len())
}

async fn prune(db: &DatabaseConnection) {
    let result = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)",
            [(RETENTION_DAYS as i32).into()],
        ))
        .await;
    if let Err(err) = result {
        tracing::warn!(%err, "could not prune the outbox");
    }
}
