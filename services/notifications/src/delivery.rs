//! Turning events into mail: keep the projection of users, record each
//! message with the event that asked for it (once per event), and send it at
//! most one a second across all replicas, in the order events arrived.
//!
//! Events of different services overtake each other (each has its own outbox
//! relay), so an order's confirmation can arrive before its customer's
//! `user.registered`. Such a message is kept pending without a recipient and
//! goes out as soon as the address arrives; only a deleted user's mail fails.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use events::{Envelope, Event};
use futures::future::BoxFuture;
use platform::consumer::{Handler, Subscription};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Statement,
};
use uuid::Uuid;

use crate::entity::{contact, notification};
use crate::mailer::Mailer;
use crate::templates::{self, Mail};

/// The subscription: every event that changes the projection or asks for mail.
/// One consumer at a time across replicas keeps arrival order and the pace.
pub const SUBSCRIPTION: Subscription = Subscription {
    name: "notifications",
    events: &[
        "user.registered",
        "user.updated",
        "user.deleted",
        "order.created",
        "order.status_changed",
    ],
    single_active: true,
    prefetch: 1,
    max_attempts: 5,
    first_retry: Duration::from_secs(1),
};

/// Handles events for the notifications service.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The notifications database.
    pub db: DatabaseConnection,
    /// Where mail goes.
    pub mailer: Mailer,
    /// The sender address.
    pub from: String,
    /// Least time between two messages.
    pub interval: Duration,
}

impl Handler for Delivery {
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let event = envelope.clone();
            platform::inbox::process(&self.db, SUBSCRIPTION.name, envelope.id, move |txn| {
                Box::pin(async move { record(txn, &event).await })
            })
            .await?;
            // Sent now, or (after a crash or a failed attempt) on redelivery.
            self.send_pending(envelope.id).await?;
            // An address that arrives releases what waited for it.
            match &envelope.event {
                Event::UserRegistered(user) => self.send_waiting(user.user_id).await,
                Event::UserUpdated(user) => self.send_waiting(user.user_id).await,
                _ => Ok(()),
            }
        })
    }
}

async fn upsert_contact(
    txn: &DatabaseTransaction,
    user_id: Uuid,
    email: &str,
    name: &str,
) -> Result<(), DbErr> {
    contact::Entity::insert(contact::ActiveModel {
        user_id: Set(user_id),
        email: Set(email.to_owned()),
        name: Set(name.to_owned()),
        deleted: Set(false),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(contact::Column::UserId)
            .update_columns([
                contact::Column::Email,
                contact::Column::Name,
                contact::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// What is known of a user's address when a message for them is recorded.
enum Recipient {
    Known(contact::Model),
    /// Their `user.registered` has not arrived yet.
    NotYet,
    Deleted,
}

async fn contact_of(txn: &DatabaseTransaction, user_id: Uuid) -> Result<Recipient, DbErr> {
    Ok(match contact::Entity::find_by_id(user_id).one(txn).await? {
        Some(contact) if contact.deleted => Recipient::Deleted,
        Some(contact) => Recipient::Known(contact),
        None => Recipient::NotYet,
    })
}

impl Recipient {
    fn name(&self) -> &str {
        match self {
            Recipient::Known(contact) => &contact.name,
            _ => "customer",
        }
    }

    /// The address, the message's status and why it has no address.
    fn delivery(self) -> (Option<String>, &'static str, Option<&'static str>) {
        match self {
            Recipient::Known(contact) => (Some(contact.email), "pending", None),
            Recipient::NotYet => (
                None,
                "pending",
                Some("waiting for the user's address (user.registered has not arrived yet)"),
            ),
            Recipient::Deleted => (None, "failed", Some("the user was deleted")),
        }
    }
}

/// Gives messages that waited for `user_id`'s address that address.
async fn address_waiting(
    txn: &DatabaseTransaction,
    user_id: Uuid,
    email: &str,
) -> Result<(), DbErr> {
    notification::Entity::update_many()
        .col_expr(
            notification::Column::Recipient,
            Some(email.to_owned()).into(),
        )
        .col_expr(notification::Column::LastError, None::<String>.into())
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::Status.eq("pending"))
        .filter(notification::Column::Recipient.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// Applies the event to the projection and records the message it asks for.
async fn record(txn: &DatabaseTransaction, envelope: &Envelope) -> Result<(), DbErr> {
    let (user_id, kind, recipient, mail): (Uuid, &str, Recipient, Mail) = match &envelope.event {
        Event::UserRegistered(user) => {
            upsert_contact(txn, user.user_id, &user.email, &user.name).await?;
            address_waiting(txn, user.user_id, &user.email).await?;
            let contact = contact_of(txn, user.user_id).await?;
            (
                user.user_id,
                "welcome",
                contact,
                templates::welcome(&user.name),
            )
        }
        Event::UserUpdated(user) => {
            upsert_contact(txn, user.user_id, &user.email, &user.name).await?;
            address_waiting(txn, user.user_id, &user.email).await?;
            return Ok(());
        }
        Event::UserDeleted(deleted) => {
            contact::Entity::update_many()
                .col_expr(contact::Column::Deleted, true.into())
                .filter(contact::Column::UserId.eq(deleted.user_id))
                .exec(txn)
                .await?;
            return Ok(());
        }
        Event::OrderCreated(order) => {
            let contact = contact_of(txn, order.user_id).await?;
            let mail = templates::order_confirmation(contact.name(), order);
            (order.user_id, "order_confirmation", contact, mail)
        }
        Event::OrderStatusChanged(change) if change.to == "shipped" => {
            let contact = contact_of(txn, change.user_id).await?;
            let mail = templates::order_shipped(contact.name(), change.order_id);
            (change.user_id, "order_shipped", contact, mail)
        }
        _ => return Ok(()),
    };
    let (recipient, status, why) = recipient.delivery();
    notification::Entity::insert(notification::ActiveModel {
        notification_id: Set(Uuid::now_v7()),
        event_id: Set(envelope.id),
        user_id: Set(user_id),
        kind: Set(kind.to_owned()),
        recipient: Set(recipient),
        subject: Set(mail.subject),
        body_text: Set(mail.text),
        body_html: Set(mail.html),
        status: Set(status.to_owned()),
        attempts: Set(0),
        last_error: Set(why.map(str::to_owned)),
        created_at: Set(Utc::now().trunc_subsecs(6)),
        sent_at: Set(None),
    })
    .on_conflict(
        OnConflict::column(notification::Column::EventId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

impl Delivery {
    /// Waits until the last message (from any replica) left `interval` ago.
    async fn keep_pace(&self) -> Result<(), DbErr> {
        let row = self
            .db
            .query_one(Statement::from_string(
                DbBackend::Postgres,
                "SELECT (extract(epoch FROM (now() - max(sent_at))) * 1000)::float8 AS since_ms FROM notifications",
            ))
            .await?;
        let since_ms: Option<f64> = row.and_then(|r| r.try_get("", "since_ms").ok());
        if let Some(since) = since_ms {
            let wait = self.interval.as_millis() as f64 - since;
            if wait > 0.0 {
                tokio::time::sleep(Duration::from_millis(wait.ceil() as u64)).await;
            }
        }
        Ok(())
    }

    /// Sends the message of `event_id` if it is still pending.
    async fn send_pending(&self, event_id: Uuid) -> anyhow::Result<()> {
        let message = notification::Entity::find()
            .filter(notification::Column::EventId.eq(event_id))
            .filter(notification::Column::Status.eq("pending"))
            .one(&self.db)
            .await?;
        match message {
            Some(message) => self.send(message).await,
            None => Ok(()),
        }
    }

    /// Sends what waited for `user_id`'s address, oldest first.
    async fn send_waiting(&self, user_id: Uuid) -> anyhow::Result<()> {
        let waiting = notification::Entity::find()
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::Status.eq("pending"))
            .filter(notification::Column::Recipient.is_not_null())
            .order_by_asc(notification::Column::CreatedAt)
            .all(&self.db)
            .await?;
        for message in waiting {
            self.send(message).await?;
        }
        Ok(())
    }

    /// Sends `message`, unless it still has no address.
    async fn send(&self, message: notification::Model) -> anyhow::Result<()> {
        let Some(recipient) = &message.recipient else {
            return Ok(());
        };
        self.keep_pace().await?;
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
        let attempts = message.attempts + 1;
        match sent {
            Ok(()) => {
                self.mark_sent(message.notification_id, attempts).await?;
                metrics::counter!("notifications_sent_total", "kind" => message.kind.clone())
                    .increment(1);
                Ok(())
            }
            Err(err) => {
                // The message stays pending: the event comes back after a delay
                // (and, after its last attempt, waits in the dead letter queue
                // until it is replayed).
                notification::Entity::update_many()
                    .col_expr(notification::Column::Attempts, attempts.into())
                    .col_expr(
                        notification::Column::LastError,
                        Some(format!("{err:#}")).into(),
                    )
                    .filter(notification::Column::NotificationId.eq(message.notification_id))
                    .exec(&self.db)
                    .await?;
                Err(err.context(format!("sending {} to {recipient}", message.kind)))
            }
        }
    }

    /// Records that a message left. It did leave, so giving up here would
    /// send it again on redelivery: a database that is restarting is waited
    /// for (up to two minutes; this consumer is the only one sending, so
    /// nothing else waits behind it that could go instead).
    async fn mark_sent(&self, notification_id: Uuid, attempts: i32) -> Result<(), DbErr> {
        let mut pause = Duration::from_millis(100);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let marked = notification::Entity::update_many()
                .col_expr(notification::Column::Status, "sent".into())
                .col_expr(notification::Column::Attempts, attempts.into())
                .col_expr(notification::Column::SentAt, Some(Utc::now()).into())
                .filter(notification::Column::NotificationId.eq(notification_id))
                .exec(&self.db)
                .await;
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
