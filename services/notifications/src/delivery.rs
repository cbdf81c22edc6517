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

use events::{Envelope, Event};
use futures::future::BoxFuture;
use platform::consumer::{Handler, Subscription};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::entity::contact;
use crate::store;
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

/// What is known of a user's address when a message for them is recorded.
enum Recipient {
    Known(contact::Model),
    /// Their `user.registered` has not arrived yet.
    NotYet,
    Deleted,
}

async fn contact_of(txn: &DatabaseTransaction, user_id: Uuid) -> Result<Recipient, DbErr> {
    Ok(match store::contact(txn, user_id).await? {
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

/// Applies the event to the projection and records the message it asks for.
async fn record(txn: &DatabaseTransaction, envelope: &Envelope) -> Result<(), DbErr> {
    let (user_id, kind, recipient, mail): (Uuid, &str, Recipient, Mail) = match &envelope.event {
        Event::UserRegistered(user) => {
            store::upsert_contact(txn, user.user_id, &user.email, &user.name).await?;
            store::address_waiting(txn, user.user_id, &user.email).await?;
            let contact = contact_of(txn, user.user_id).await?;
            (
                user.user_id,
                "welcome",
                contact,
                templates::welcome(&user.name),
            )
        }
        Event::UserUpdated(user) => {
            store::upsert_contact(txn, user.user_id, &user.email, &user.name).await?;
            store::address_waiting(txn, user.user_id, &user.email).await?;
            return Ok(());
        }
        Event::UserDeleted(deleted) => {
            store::mark_deleted(txn, deleted.user_id).await?;
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
    store::insert_message(
        txn,
        store::NewMessage {
            event_id: envelope.id,
            user_id,
            kind,
            recipient,
            status,
            why,
            mail,
        },
    )
    .await
}
