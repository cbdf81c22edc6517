//! Turning events into mail: keep the projection of users and record each
//! message with the event that asked for it (once per event). Recording is
//! quick; [`crate::sending`] sends what is recorded, at its own pace.
//!
//! Events of different services overtake each other (each has its own outbox
//! relay), so an order's confirmation can arrive before its customer's
//! `user.registered`. Such a message is kept pending without a recipient and
//! goes out as soon as the address arrives; only a deleted user's mail fails.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use events::{Envelope, Event};
use futures::future::BoxFuture;
use platform::consumer::{Handler, Subscription};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::entity::{contact, notification};
use crate::templates::{self, Mail};

/// The subscription: every event that changes the projection or asks for mail.
/// One consumer at a time across replicas records messages in arrival order.
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

/// Records the messages events ask for.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The notifications database.
    pub db: DatabaseConnection,
    /// Wakes this replica's sender when there is something new to send.
    pub wake: Arc<Notify>,
}

impl Handler for Delivery {
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let event = envelope.clone();
            platform::inbox::process(&self.db, SUBSCRIPTION.name, envelope.id, move |txn| {
                Box::pin(async move { record(txn, &event).await })
            })
            .await?;
            self.wake.notify_one();
            Ok(())
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
        last_mailed_at: NotSet,
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
        next_attempt_at: Set(Utc::now()),
        sending_since: Set(None),
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
