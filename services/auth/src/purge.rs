//! The purge of expired refresh tokens: every 30 minutes by default, on one
//! replica at a time, and once from `shop auth purge-expired`.

use sea_orm::DatabaseConnection;

use crate::store;

/// Advisory lock key held while purging.
pub const PURGE_LOCK: i64 = 0x5348_4f50_5055_5247; // "SHOPPURG"

/// Deletes expired refresh tokens; `None` when another replica is purging now.
pub async fn purge_expired(db: &DatabaseConnection) -> Result<Option<u64>, sea_orm::DbErr> {
    let purged = platform::jobs::run_exclusive(db, PURGE_LOCK, |txn| async move {
        let deleted = store::delete_expired_tokens(&txn).await?;
        Ok((deleted, txn))
    })
    .await?;
    match purged {
        Some(deleted) => {
            metrics::counter!("auth_refresh_tokens_purged_total").increment(deleted);
            tracing::info!(deleted, "purged expired refresh tokens");
        }
        None => tracing::debug!("another replica is purging refresh tokens"),
    }
    Ok(purged)
}
