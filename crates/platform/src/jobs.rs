//! Periodic jobs that run on one replica at a time, under a Postgres advisory lock.

use std::future::Future;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use tokio_util::sync::CancellationToken;

/// Runs `work` inside a transaction holding advisory lock `lock_key`; `None`
/// when another replica holds the lock (it is doing the same work now).
pub async fn run_exclusive<T, F, Fut>(
    db: &DatabaseConnection,
    lock_key: i64,
    work: F,
) -> Result<Option<T>, DbErr>
where
    F: FnOnce(sea_orm::DatabaseTransaction) -> Fut,
    Fut: Future<Output = Result<(T, sea_orm::DatabaseTransaction), DbErr>>,
{
    let txn = db.begin().await?;
    if !try_lock(&txn, lock_key).await? {
        txn.rollback().await?;
        return Ok(None);
    }
    let (result, txn) = work(txn).await?;
    txn.commit().await?;
    Ok(Some(result))
}

/// Takes advisory lock `lock_key` for the rest of `txn`, unless another
/// replica holds it: then `false`, and that replica is doing the work.
pub async fn try_lock<C: ConnectionTrait>(txn: &C, lock_key: i64) -> Result<bool, DbErr> {
    Ok(txn
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [lock_key.into()],
        ))
        .await?
        .map(|row| row.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false))
}

/// A transaction for background bookkeeping on a queue table (outbox, retries).
///
/// Its commit does not wait for the disk: a commit lost in a crash only means
/// doing idempotent work again. Bitmap scans are off: only a plain index scan
/// marks the index entries of rows it finds dead, and without that every pass
/// would re-read every row handled since the last vacuum.
pub async fn bookkeeping_transaction(
    db: &DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    txn.execute_unprepared("SET LOCAL synchronous_commit = off; SET LOCAL enable_bitmapscan = off")
        .await?;
    Ok(txn)
}

/// How long a woken pass over a queue table waits for more commits, so that
/// under load one pass (one transaction, one batch to the broker or a peer)
/// carries many rows instead of one each. It adds this much to the latency
/// of what the table hands on.
pub const GATHER: Duration = Duration::from_millis(10);

/// Which rows each pass over a queue table looks at: after a wake-up (a
/// commit in this process) only those of the last few seconds, which is
/// cheap; at least every `full_every`, all of them, which also finds other
/// replicas' rows and retries that have come due.
#[derive(Debug)]
pub struct Passes {
    full_every: Duration,
    last_full: Instant,
}

impl Passes {
    /// How far back a pass after a wake-up looks, in seconds.
    const RECENT_SECS: f64 = 3.0;
    /// How far back a full pass looks: further than any row can be old.
    const ALL_SECS: f64 = 1e10;

    /// Passes that look at everything at least every `full_every`.
    pub fn new(full_every: Duration) -> Self {
        Self {
            full_every,
            last_full: Instant::now(),
        }
    }

    /// The look-back of the next pass in seconds (for
    /// `now() - make_interval(secs => ...)`), `woken` telling whether a commit woke it.
    pub fn next(&mut self, woken: bool) -> f64 {
        if woken && self.last_full.elapsed() < self.full_every {
            return Self::RECENT_SECS;
        }
        self.last_full = Instant::now();
        Self::ALL_SECS
    }
}

/// Calls `tick` every `every` until `shutdown`, logging failures.
pub async fn every<F, Fut>(
    name: &'static str,
    every: Duration,
    shutdown: CancellationToken,
    mut tick: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {
                if let Err(err) = tick().await {
                    tracing::warn!(job = name, error = %format!("{err:#}"), "periodic job failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Passes;

    #[test]
    fn woken_passes_look_back_briefly_until_a_full_pass_is_due() {
        let mut passes = Passes::new(Duration::from_secs(3600));
        assert_eq!(passes.next(true), Passes::RECENT_SECS);
        assert_eq!(passes.next(false), Passes::ALL_SECS);
        let mut always_due = Passes::new(Duration::ZERO);
        assert_eq!(always_due.next(true), Passes::ALL_SECS);
    }
}
