//! Auth's part in deleting a user: on `user.deleted` the login and every
//! refresh token go, and every access token is revoked at once.

use std::sync::Arc;
use std::time::Duration;

use events::{Envelope, Event};
use futures::future::BoxFuture;
use platform::consumer::{Handler, Subscription};
use redis::aio::ConnectionManager;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::entity::{credential, refresh_token};

/// The subscription: `user.deleted` only.
pub const SUBSCRIPTION: Subscription = Subscription {
    name: "auth",
    events: &["user.deleted"],
    single_active: false,
    prefetch: 16,
    max_attempts: 5,
    first_retry: Duration::from_secs(1),
};

/// Removes the login of deleted users.
pub struct UserDeleted {
    /// Auth's database.
    pub db: DatabaseConnection,
    /// Redis, for the revocation.
    pub redis: ConnectionManager,
    /// This process's revocation set.
    pub verifier: Arc<platform::auth::Verifier>,
}

impl Handler for UserDeleted {
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let Event::UserDeleted(deleted) = &envelope.event else {
                return Ok(());
            };
            let user_id = deleted.user_id;
            // Revoking is idempotent, so it goes first: a retry repeats it harmlessly.
            platform::revocation::revoke_user(&self.redis, self.verifier.revocations(), user_id)
                .await?;
            platform::inbox::process(&self.db, SUBSCRIPTION.name, envelope.id, |txn| {
                Box::pin(async move {
                    refresh_token::Entity::delete_many()
                        .filter(refresh_token::Column::UserId.eq(user_id))
                        .exec(txn)
                        .await?;
                    credential::Entity::delete_by_id(user_id).exec(txn).await?;
                    Ok(())
                })
            })
            .await?;
            tracing::info!(%user_id, "removed the login of a deleted user");
            Ok(())
        })
    }
}
