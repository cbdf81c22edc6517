//! Each product's rating, kept from the reviews service's `review.*` events.
//!
//! The consumer owns a tally, `product_reviews`: the newest known state of
//! every review, where a higher version wins and a deletion (which carries
//! its review's last version plus one) outranks everything before it. An
//! event that does not change the tally (a redelivery, or one overtaken by a
//! newer one) changes nothing else either; one that does recomputes its
//! product's count and sum from the tally, so the rating stays exact however
//! events are repeated or reordered.

use std::sync::Arc;
use std::time::Duration;

use events::{Envelope, Event, ReviewChanged};
use futures::future::BoxFuture;
use platform::cache::VersionedCache;
use platform::consumer::{Handler, Subscription};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use crate::entity::product::Model;
use crate::http::cache_record;
use crate::store;

pub const SUBSCRIPTION: Subscription = Subscription {
    name: "products",
    events: &["review.created", "review.updated", "review.deleted"],
    single_active: false,
    prefetch: 32,
    max_attempts: 8,
    first_retry: Duration::from_millis(500),
};

/// Applies review events to the tally and the products' ratings.
pub struct Ratings {
    pub db: DatabaseConnection,
    pub cache: Arc<VersionedCache>,
}

impl Handler for Ratings {
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let (review, deleted) = match &envelope.event {
                Event::ReviewCreated(review) | Event::ReviewUpdated(review) => (review, false),
                Event::ReviewDeleted(review) => (review, true),
                _ => return Ok(()),
            };
            let review = review.clone();
            let rated = platform::inbox::process(&self.db, SUBSCRIPTION.name, envelope.id, |txn| {
                Box::pin(async move { apply(txn, &review, deleted).await })
            })
            .await?;
            // The product's JSON carries its rating: replace what the cache holds.
            if let Some(Some(product)) = rated {
                self.cache.replace_many(&[cache_record(&product)]).await;
            }
            Ok(())
        })
    }
}

/// Records `review` in the tally; when that changed it, recomputes the
/// product's rating and returns the product as it is now.
async fn apply<C: ConnectionTrait>(
    db: &C,
    review: &ReviewChanged,
    deleted: bool,
) -> Result<Option<Model>, DbErr> {
    // Events of one product queue here, so each recount sees the others' reviews.
    store::lock_product(db, review.product_id).await?;
    if !store::tally_review(db, review, deleted).await? {
        return Ok(None);
    }
    store::recount_rating(db, review.product_id).await
}
