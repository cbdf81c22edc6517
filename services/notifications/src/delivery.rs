//! Turning events into mail: keep the projection of users, record each
//! message with the event that asked for it (once per event), and send it at
//! most one a second across all replicas, in the order events arrived.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use events::{Envelope, Event};
use futures::future::BoxFuture;
use platform::consumer::{Handler, Subscription};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
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
            self.send_pending(envelope.id).await
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

async fn contact_of(
    txn: &DatabaseTransaction,
    user_id: Uuid,
) -> Result<Option<contact::Model>, DbErr> {
    contact::Entity::find_by_id(user_id)
        .filter(contact::Column::Deleted.eq(false))
        .one(txn)
        .await
}

/// Applies the event to the projection and records the message it asks for.
async fn record(txn: &DatabaseTransaction, envelope: &Envelope) -> Result<(), DbErr> {
    let (user_id, kind, recipient, mail): (Uuid, &str, Option<String>, Mail) = match &envelope.event
    {
        Event::UserRegistered(user) => {
            upsert_contact(txn, user.user_id, &user.email, &user.name).await?;
            (
                user.user_id,
                "welcome",
                Some(user.email.clone()),
                templates::welcome(&user.name),
            )
        }
        Event::UserUpdated(user) => {
            upsert_contact(txn, user.user_id, &user.email, &user.name).await?;
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
            let name = contact.as_ref().map_or("customer", |c| c.name.as_str());
            let mail = templates::order_confirmation(name, order);
            (
                order.user_id,
                "order_confirmation",
                contact.map(|c| c.email),
                mail,
            )
        }
        Event::OrderStatusChanged(change) if change.to == "shipped" => {
            let contact = contact_of(txn, change.user_id).await?;
            let name = contact.as_ref().map_or("customer", |c| c.name.as_str());
            let mail = templates::order_shipped(name, change.order_id);
            (
                change.user_id,
                "order_shipped",
                contact.map(|c| c.email),
                mail,
            )
        }
        _ => return Ok(()),
    };
    let status = if recipient.is_some() {
        "pending"
    } else {
        "failed"
    };
    notification::Entity::insert(notification::ActiveModel {
        notification_id: Set(Uuid::now_v7()),
        event_id: Set(envelope.id),
        user_id: Set(user_id),
        kind: Set(kind.to_owned()),
        recipient: Set(recipient.clone()),
        subject: Set(mail.subject),
        body_text: Set(mail.text),
        body_html: Set(mail.html),
        status: Set(status.to_owned()),
        attempts: Set(0),
        last_error: Set(recipient
            .is_none()
            .then(|| "no e-mail address is known for this user".to_owned())),
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
        let Some(message) = notification::Entity::find()
            .filter(notification::Column::EventId.eq(event_id))
            .filter(notification::Column::Status.eq("pending"))
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
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
                notification::Entity::update_many()
                    .col_expr(notification::Column::Status, "sent".into())
                    .col_expr(notification::Column::Attempts, attempts.into())
                    .col_expr(notification::Column::SentAt, Some(Utc::now()).into())
                    .filter(notification::Column::NotificationId.eq(message.notification_id))
                    .exec(&self.db)
                    .await?;
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
}
