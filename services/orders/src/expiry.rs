//! Unpaid orders expire: an order left `created` longer than the payment
//! window is cancelled by a job on one replica at a time, which gives its
//! stock back and announces the change like any other cancellation.

use std::time::Duration;

use platform::ApiError;
use sea_orm::TransactionTrait;

use crate::AppState;
use crate::domain::Status;
use crate::store;
use crate::transitions::move_orders;

/// The advisory lock that keeps the job on one replica at a time.
const LOCK: i64 = 0x6f72_6465_7273_0002;

/// Orders cancelled per transaction.
const BATCH: u64 = 100;

/// How often the job looks: often enough that an order outlives its window
/// by a small part of it, at most a minute.
pub fn interval(window: Duration) -> Duration {
    (window / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Cancels every order unpaid for longer than `window`; returns how many.
pub async fn cancel_unpaid(state: &AppState, window: Duration) -> Result<usize, ApiError> {
    let mut cancelled = 0;
    loop {
        let txn = state.db.begin().await?;
        if !platform::jobs::try_lock(&txn, LOCK).await? {
            return Ok(cancelled);
        }
        let unpaid = store::lock_unpaid(&txn, window, BATCH).await?;
        if unpaid.is_empty() {
            txn.commit().await?;
            return Ok(cancelled);
        }
        let moves: Vec<_> = unpaid.iter().map(|s| (s, Status::Cancelled)).collect();
        cancelled += move_orders(state, txn, &moves).await?.len();
        metrics::counter!("orders_expired_unpaid_total").increment(moves.len() as u64);
        if moves.len() < BATCH as usize {
            return Ok(cancelled);
        }
    }
}
