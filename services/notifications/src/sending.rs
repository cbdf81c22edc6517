//! Sending recorded messages: one a second across every replica, fairly
//! between users, each user's in the order their events arrived.
//!
//! Every replica runs a sender; they take turns through the one-row
//! `mail_pace` table, whose time a sender moves forward to claim the next
//! slot. The message for the slot is the oldest waiting one of the user
//! mailed longest ago, so a customer with a thousand confirmations queued
//! delays a newcomer's welcome by about a second, not a thousand. A failed
//! attempt is retried after a doubling delay; until it succeeds (or is given
//! up) that user's later messages wait, so retries never reorder a user's
//! mail, and never hold back anyone else's.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::entity::notification;
use crate::mailer::Mailer;
use crate::store;
use crate::templates::Mail;

/// How often an idle sender looks for messages other replicas recorded.
const POLL: Duration = Duration::from_secs(1);
/// The longest delay between two attempts at one message.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// Sends recorded messages until shutdown.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The notifications database.
    pub db: DatabaseConnection,
    /// Where mail goes.
    pub mailer: Mailer,
    /// The sender address.
    pub from: String,
    /// Least time between two messages, across replicas.
    pub interval: Duration,
    /// Attempts at one message before it is marked `failed`.
    pub max_attempts: u32,
    /// Delay before the second attempt; each further one waits twice as long.
    pub first_retry: Duration,
}

/// What one turn of the sender found.
enum Turn {
    /// A message went (or failed and was rescheduled): go on.
    Sent,
    /// Another message left less than an interval ago: wait this long.
    TooSoon(Duration),
    /// Nothing can go now.
    Idle,
}

impl Sender {
    /// Sends until `shutdown`, woken early by `wake` when a message is recorded here.
    pub async fn run(self, wake: Arc<Notify>, shutdown: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let pause = match self.turn().await {
                Ok(Turn::Sent) => {
                    failures = 0;
                    continue;
                }
                Ok(Turn::TooSoon(wait)) => wait.min(POLL),
                Ok(Turn::Idle) => POLL,
                Err(err) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(%err, "the mail sender cannot reach its database");
                    }
                    POLL
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn turn(&self) -> anyhow::Result<Turn> {
        let message = match self.claim().await? {
            Ok(message) => message,
            Err(turn) => return Ok(turn),
        };
        self.send(message).await?;
        Ok(Turn::Sent)
    }

    /// Takes the next slot and the message for it, or says why not.
    async fn claim(&self) -> Result<Result<notification::Model, Turn>, DbErr> {
        let interval = self.interval.as_secs_f64();
        let txn = self.db.begin().await?;
        if !store::claim_slot(&txn, interval).await? {
            let wait = store::slot_wait(&txn, interval).await?;
            txn.rollback().await?;
            return Ok(Err(Turn::TooSoon(Duration::from_secs_f64(
                wait.clamp(0.001, 60.0),
            ))));
        }
        let Some(message) = store::next_message(&txn).await? else {
            // The slot is not used: give it back.
            txn.rollback().await?;
            return Ok(Err(Turn::Idle));
        };
        store::mark_claimed(&txn, &message).await?;
        txn.commit().await?;
        Ok(Ok(message))
    }

    /// Hands `message` to the mail server and records what became of it.
    async fn send(&self, message: notification::Model) -> Result<(), DbErr> {
        let Some(recipient) = &message.recipient else {
            return Ok(());
        };
        let mail = Mail {
            subject: message.subject.clone(),
            text: message.body_text.clone(),
            html: message.body_html.clone(),
        };
        let sent = self
            .mailer
            .send(
                &self.from,
                recipient,
                &message.notification_id.to_string(),
                &mail,
            )
            .await;
        // The next slot opens an interval after the mail server answered, so
        // mail arrives at least an interval apart however long sending took.
        if let Err(err) = store::mail_left(&self.db).await {
            tracing::warn!(%err, "could not record when the last mail left");
        }
        let attempts = message.attempts + 1;
        match sent {
            Ok(()) => {
                self.mark_sent(message.notification_id, attempts).await?;
                metrics::counter!("notifications_sent_total", "kind" => message.kind.clone())
                    .increment(1);
            }
            Err(err) => {
                let error = format!("{err:#}");
                let given_up = attempts >= self.max_attempts.max(1) as i32;
                let delay = retry_delay(self.first_retry, attempts);
                if given_up {
                    tracing::error!(notification_id = %message.notification_id, attempts, %error, "a mail failed for good");
                } else {
                    tracing::warn!(notification_id = %message.notification_id, attempts, ?delay, %error, "a mail failed; will retry");
                }
                store::mark_failed_attempt(
                    &self.db,
                    message.notification_id,
                    attempts,
                    error,
                    given_up,
                    delay.as_secs_f64(),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Records that a message left. It did leave, so giving up here would
    /// send it again once its claim is stale: a database that is restarting
    /// is waited for (up to two minutes).
    async fn mark_sent(&self, notification_id: Uuid, attempts: i32) -> Result<(), DbErr> {
        let mut pause = Duration::from_millis(100);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let marked = store::mark_sent(&self.db, notification_id, attempts).await;
            match marked {
                Ok(_) => return Ok(()),
                Err(err) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%notification_id, %err, "a sent mail is not marked sent yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// The wait after failed attempt number `attempts` (1 for the first).
fn retry_delay(first: Duration, attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    (first * 2u32.pow(doublings)).min(MAX_RETRY_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_five_minutes() {
        let first = Duration::from_secs(1);
        assert_eq!(retry_delay(first, 1), Duration::from_secs(1));
        assert_eq!(retry_delay(first, 2), Duration::from_secs(2));
        assert_eq!(retry_delay(first, 4), Duration::from_secs(8));
        assert_eq!(retry_delay(first, 40), MAX_RETRY_DELAY);
    }
}
