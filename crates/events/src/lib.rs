//! The events shop services announce on RabbitMQ: one envelope, one payload
//! type per event, shared by the producer and every consumer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The topic exchange every event is published to; the routing key is the event type.
pub const EXCHANGE: &str = "shop.events";

/// What travels on the wire: `{id, type, occurred_at, source, data}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per event; consumers deduplicate on it.
    pub id: Uuid,
    /// The event type and its payload, flattened into `type` and `data`.
    #[serde(flatten)]
    pub event: Event,
    /// When the change happened (the commit of the state change).
    pub occurred_at: DateTime<Utc>,
    /// The service that announced it.
    pub source: String,
}

impl Envelope {
    /// Wraps an event announced now by `source`.
    pub fn new(source: &str, event: Event) -> Self {
        Self {
            id: Uuid::now_v7(),
            event,
            occurred_at: Utc::now(),
            source: source.to_owned(),
        }
    }
}

/// Every event type, tagged with the name that is also its routing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// A profile was created (self-registration or an admin's bulk create).
    #[serde(rename = "user.registered")]
    UserRegistered(UserProfile),
    /// A profile changed.
    #[serde(rename = "user.updated")]
    UserUpdated(UserProfile),
    /// A profile was deleted.
    #[serde(rename = "user.deleted")]
    UserDeleted(UserDeleted),
    /// A product was created, changed, deleted, or its stock moved.
    #[serde(rename = "product.updated")]
    ProductUpdated(ProductUpdated),
    /// An order was placed.
    #[serde(rename = "order.created")]
    OrderCreated(OrderCreated),
    /// An order moved to another status.
    #[serde(rename = "order.status_changed")]
    OrderStatusChanged(OrderStatusChanged),
    /// A review was written.
    #[serde(rename = "review.created")]
    ReviewCreated(ReviewChanged),
    /// A review's text was edited.
    #[serde(rename = "review.updated")]
    ReviewUpdated(ReviewChanged),
    /// A review was deleted (by its author, an admin, or with its author).
    #[serde(rename = "review.deleted")]
    ReviewDeleted(ReviewChanged),
}

impl Event {
    /// The event type, used as the routing key.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::UserRegistered(_) => "user.registered",
            Event::UserUpdated(_) => "user.updated",
            Event::UserDeleted(_) => "user.deleted",
            Event::ProductUpdated(_) => "product.updated",
            Event::OrderCreated(_) => "order.created",
            Event::OrderStatusChanged(_) => "order.status_changed",
            Event::ReviewCreated(_) => "review.created",
            Event::ReviewUpdated(_) => "review.updated",
            Event::ReviewDeleted(_) => "review.deleted",
        }
    }

    /// What the event is about, for ordering: a consumer that handles several
    /// events at once keeps those with the same subject in the order they
    /// arrived. A user's profile and orders share the user's id (a deletion
    /// never overtakes the order placed before it); a product's stock moves and
    /// its reviews share the product's id.
    pub fn subject(&self) -> Uuid {
        match self {
            Event::UserRegistered(profile) | Event::UserUpdated(profile) => profile.user_id,
            Event::UserDeleted(deleted) => deleted.user_id,
            Event::OrderCreated(order) => order.user_id,
            Event::OrderStatusChanged(change) => change.user_id,
            Event::ProductUpdated(product) => product.product_id,
            Event::ReviewCreated(review)
            | Event::ReviewUpdated(review)
            | Event::ReviewDeleted(review) => review.product_id,
        }
    }
}

/// The part of a profile other services keep a projection of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    /// The user's id.
    pub user_id: Uuid,
    /// Lower-cased e-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `customer`, `support` or `admin`.
    pub role: String,
}

/// Payload of `user.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDeleted {
    /// The deleted user's id.
    pub user_id: Uuid,
}

/// Payload of `product.updated`: the product as it is after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductUpdated {
    /// The product's id.
    pub product_id: Uuid,
    /// Stock-keeping unit.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Units available.
    pub stock: i32,
    /// The version after the change.
    pub version: i32,
    /// True once the product has been deleted.
    pub deleted: bool,
}

/// One line of an order as events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The product.
    pub product_id: Uuid,
    /// Its name when ordered.
    pub name: String,
    /// Its unit price when ordered.
    pub unit_price_cents: i64,
    /// Units.
    pub quantity: i32,
}

/// Payload of `order.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The order.
    pub order_id: Uuid,
    /// Who it is for.
    pub user_id: Uuid,
    /// What was ordered.
    pub items: Vec<OrderLine>,
    /// Sum of the lines.
    pub total_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
}

/// Payload of `order.status_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderStatusChanged {
    /// The order.
    pub order_id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// The status before.
    pub from: String,
    /// The status now.
    pub to: String,
    /// The order's version after the change.
    pub version: i32,
}

/// Payload of every `review.*` event: what a product's rating is made of.
/// `version` orders the events of one review, so a consumer that sees them
/// late or twice keeps the newest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewChanged {
    pub review_id: Uuid,
    pub product_id: Uuid,
    /// The author.
    pub user_id: Uuid,
    /// 1 to 5 stars.
    pub rating: i16,
    /// The review's version after the change; a deletion carries the
    /// version after the last change plus one.
    pub version: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_documented_shape() {
        let envelope = Envelope::new(
            "users",
            Event::UserDeleted(UserDeleted {
                user_id: Uuid::nil(),
            }),
        );
        let json = serde_json::to_value(&envelope).expect("an envelope always serialises");
        assert_eq!(json["type"], "user.deleted");
        assert_eq!(json["data"]["user_id"], Uuid::nil().to_string());
        assert_eq!(json["source"], "users");
        assert!(json["id"].is_string() && json["occurred_at"].is_string());
        let back: Envelope = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, envelope);
    }

    #[test]
    fn routing_key_matches_the_serialised_type() {
        let event = Event::UserUpdated(UserProfile {
            user_id: Uuid::nil(),
            email: "a@b.co".into(),
            name: "A".into(),
            role: "customer".into(),
        });
        let json = serde_json::to_value(&event).expect("serialises");
        assert_eq!(json["type"], event.event_type());
    }
}
