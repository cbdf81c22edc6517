//! What reviews learns from other services' events: authors' names
//! (`user.*`), who bought what (`order.*`: a delivered order's lines verify
//! its buyer's reviews, whichever of the two events comes first), which
//! products exist (`product.updated`); and a deleted user's reviews go, each
//! with its `review.deleted` so the products' ratings follow.

use std::time::Duration;

use events::{Envelope, Event};
use futures::future::BoxFuture;
use platform::cache::GenerationalCache;
use platform::consumer::{Handler, Subscription};
use platform::outbox::Outbox;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::store;

pub const SUBSCRIPTION: Subscription = Subscription {
    name: "reviews",
    events: &[
        "user.registered",
        "user.updated",
        "user.deleted",
        "order.created",
        "order.status_changed",
        "product.updated",
    ],
    single_active: false,
    prefetch: 16,
    max_attempts: 8,
    first_retry: Duration::from_secs(1),
};

/// Applies events to the projections, once each (the inbox).
pub struct Projector {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub pages: GenerationalCache,
}

/// What applying an event changed beyond the projections.
#[derive(Default)]
struct Applied {
    /// Events were written to the outbox.
    announced: bool,
    /// Products whose reviews changed (renamed, verified, deleted).
    products: Vec<Uuid>,
}

impl Handler for Projector {
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // Every placed order and stock move brings these: the cheap ones
            // are settled here, without a transaction of their own.
            match &envelope.event {
                // Only a deletion changes what reviews knows of a product,
                // and recording one twice changes nothing.
                Event::ProductUpdated(product) => {
                    store::record_product(
                        &self.db,
                        product.product_id,
                        product.version,
                        product.deleted,
                    )
                    .await?;
                    return Ok(());
                }
                Event::OrderStatusChanged(change) if change.to != "delivered" => return Ok(()),
                _ => {}
            }
            let (outbox, event) = (self.outbox.clone(), envelope.clone());
            let applied =
                platform::inbox::process(&self.db, SUBSCRIPTION.name, envelope.id, move |txn| {
                    Box::pin(async move { apply(txn, &outbox, &event).await })
                })
                .await?;
            if let Some(applied) = applied {
                if applied.announced {
                    self.outbox.notify();
                }
                for product_id in applied.products {
                    crate::reading::changed(&self.pages, product_id).await;
                }
            }
            Ok(())
        })
    }
}

/// Applies one event inside `txn`.
async fn apply(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    envelope: &Envelope,
) -> Result<Applied, DbErr> {
    match &envelope.event {
        Event::UserRegistered(user) | Event::UserUpdated(user) => {
            store::lock_user(txn, user.user_id).await?;
            let products =
                store::record_author(txn, user.user_id, &user.name, envelope.occurred_at).await?;
            Ok(Applied {
                announced: false,
                products,
            })
        }
        Event::UserDeleted(user) => {
            store::lock_user(txn, user.user_id).await?;
            let gone = store::forget_author(txn, user.user_id, envelope.occurred_at).await?;
            let events: Vec<Envelope> = gone
                .iter()
                .map(|review| {
                    Envelope::new(
                        crate::NAME,
                        Event::ReviewDeleted(crate::writing::changed(review, review.version + 1)),
                    )
                })
                .collect();
            if !gone.is_empty() {
                tracing::info!(user_id = %user.user_id, reviews = gone.len(), "deleted the reviews of a deleted user");
            }
            outbox.enqueue(txn, &events).await?;
            Ok(Applied {
                announced: !events.is_empty(),
                products: gone.iter().map(|review| review.product_id).collect(),
            })
        }
        Event::OrderCreated(order) => {
            store::lock_user(txn, order.user_id).await?;
            let products: Vec<_> = order.items.iter().map(|line| line.product_id).collect();
            store::record_order_lines(txn, order.order_id, order.user_id, &products).await?;
            // Its delivery may have been heard of first.
            let products = store::verify_purchases(txn, order.user_id).await?;
            Ok(Applied {
                announced: false,
                products,
            })
        }
        Event::OrderStatusChanged(change) if change.to == "delivered" => {
            store::lock_user(txn, change.user_id).await?;
            store::record_delivery(txn, change.order_id, change.user_id).await?;
            let products = store::verify_purchases(txn, change.user_id).await?;
            Ok(Applied {
                announced: false,
                products,
            })
        }
        _ => Ok(Applied::default()),
    }
}
