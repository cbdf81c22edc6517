//! Stock confirmations and releases, written in the transaction that needs
//! them and handed to the products service after commit: releases at once,
//! confirmations in batches (one call for many orders) by a worker woken on
//! commit. Whatever does not get through is retried with backoff by every
//! replica (rows claimed with `FOR UPDATE SKIP LOCKED`), so a cancelled order
//! always gets its stock back and a placed order always keeps it.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryTrait, Statement,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::Line;
use crate::entity::settlement;
use crate::peers::Products;

/// Settlements one pass hands over.
const BATCH: usize = 500;
/// How often a full pass looks for retries that have come due.
const POLL: Duration = Duration::from_secs(2);

/// A confirmation to hand over.
pub fn confirm(reservation_id: Uuid) -> settlement::Model {
    row("confirm", reservation_id, None, None)
}

/// A partial release (one order's lines) to hand over.
pub fn release(reservation_id: Uuid, order_id: Uuid, lines: &[Line]) -> settlement::Model {
    row(
        "release",
        reservation_id,
        Some(order_id),
        serde_json::to_value(lines).ok(),
    )
}

fn row(
    kind: &str,
    reservation_id: Uuid,
    release_id: Option<Uuid>,
    items: Option<serde_json::Value>,
) -> settlement::Model {
    let now = Utc::now();
    settlement::Model {
        settlement_id: Uuid::now_v7(),
        kind: kind.into(),
        reservation_id,
        release_id,
        items,
        attempts: 0,
        last_error: None,
        next_attempt_at: now,
        created_at: now,
    }
}

/// Writes settlements (inside the caller's transaction).
pub async fn record<C: ConnectionTrait>(db: &C, rows: &[settlement::Model]) -> Result<(), DbErr> {
    if let Some(insert) = insert(rows) {
        db.execute(insert).await?;
    }
    Ok(())
}

/// The statement that writes settlements, to run with others; `None` for none.
pub fn insert(rows: &[settlement::Model]) -> Option<Statement> {
    if rows.is_empty() {
        return None;
    }
    let insert = settlement::Entity::insert_many(rows.iter().map(|r| settlement::ActiveModel {
        settlement_id: Set(r.settlement_id),
        kind: Set(r.kind.clone()),
        reservation_id: Set(r.reservation_id),
        release_id: Set(r.release_id),
        items: Set(r.items.clone()),
        attempts: Set(0),
        last_error: Set(None),
        next_attempt_at: Set(r.next_attempt_at),
        created_at: Set(r.created_at),
    }));
    Some(insert.build(DbBackend::Postgres))
}

/// Hands one release over; confirmations always go in batches (see `retry_once`).
async fn send_release(
    products: &Products,
    row: &settlement::Model,
) -> Result<(), platform::ApiError> {
    let lines: Vec<Line> = row
        .items
        .clone()
        .and_then(|items| serde_json::from_value(items).ok())
        .unwrap_or_default();
    let part = row.release_id.map(|id| (id, lines.as_slice()));
    products.release(row.reservation_id, part).await
}

/// Puts a failed settlement off, longer after each failure.
async fn defer<C: ConnectionTrait>(
    db: &C,
    row: &settlement::Model,
    error: &str,
) -> Result<(), DbErr> {
    let backoff = (1i64 << row.attempts.clamp(0, 8)).min(300);
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE stock_settlements SET attempts = attempts + 1, last_error = $2,
                next_attempt_at = now() + make_interval(secs => $3)
          WHERE settlement_id = $1",
        [
            row.settlement_id.into(),
            error.into(),
            (backoff as f64).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Hands the release `rows` over now (right after their commit); what fails stays for the retrier.
pub async fn release_now(db: &DatabaseConnection, products: &Products, rows: &[settlement::Model]) {
    for row in rows {
        match send_release(products, row).await {
            Ok(()) => {
                let deleted = settlement::Entity::delete_by_id(row.settlement_id)
                    .exec(db)
                    .await;
                if let Err(err) = deleted {
                    tracing::warn!(%err, "settled, but could not forget the settlement; it will be sent again");
                }
            }
            Err(err) => {
                tracing::warn!(reservation = %row.reservation_id, error = %err, "stock settlement deferred")
            }
        }
    }
}

/// Retries due settlements until `shutdown`.
pub async fn retry(
    db: DatabaseConnection,
    products: Products,
    wake: std::sync::Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut woken = false;
    let mut passes = platform::jobs::Passes::new(POLL);
    loop {
        match retry_once(&db, &products, passes.next(woken)).await {
            // A full batch: more rows are waiting now. Rows committed
            // during a smaller pass have woken it and gather first.
            Ok(n) if n >= BATCH => continue,
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "stock settlement retrier failed"),
        }
        woken = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {
                tokio::time::sleep(platform::jobs::GATHER).await;
                true
            }
            _ = tokio::time::sleep(POLL) => false,
        };
    }
}

/// Orders whose stock was released before they were confirmed. It cannot
/// happen while the confirmer runs (holds last minutes, confirmations take
/// milliseconds); if it does, it must be seen.
fn lost_holds(released: &[Uuid]) {
    for reservation_id in released {
        tracing::error!(%reservation_id, "a placed order's stock hold lapsed before it was confirmed");
    }
    metrics::counter!("orders_lost_holds_total").increment(released.len() as u64);
}

/// Hands over the settlements that came due in the last `lookback_secs`.
async fn retry_once(
    db: &DatabaseConnection,
    products: &Products,
    lookback_secs: f64,
) -> Result<usize, DbErr> {
    // Confirming or releasing again after a lost commit is taken as done.
    let txn = platform::jobs::bookkeeping_transaction(db).await?;
    let rows: Vec<settlement::Model> = settlement::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT * FROM stock_settlements
              WHERE next_attempt_at <= now()
                AND next_attempt_at > now() - make_interval(secs => $1)
              ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            [lookback_secs.into(), (BATCH as i64).into()],
        ))
        .all(&txn)
        .await?;
    let (confirms, releases): (Vec<_>, Vec<_>) = rows.iter().partition(|row| row.kind == "confirm");
    let mut settled = 0;
    if !confirms.is_empty() {
        // Every confirmation due goes in one call.
        let ids: Vec<Uuid> = confirms.iter().map(|row| row.reservation_id).collect();
        match products.confirm(&ids).await {
            Ok(released) => {
                lost_holds(&released);
                let done: Vec<Uuid> = confirms.iter().map(|row| row.settlement_id).collect();
                settlement::Entity::delete_many()
                    .filter(settlement::Column::SettlementId.is_in(done))
                    .exec(&txn)
                    .await?;
                // Confirmed holds never lapse: nobody will ask about them again.
                txn.execute(crate::holds::forget(&ids)).await?;
                settled += confirms.len();
            }
            Err(err) => {
                for row in &confirms {
                    defer(&txn, row, &err.to_string()).await?;
                }
            }
        }
    }
    for row in releases {
        match send_release(products, row).await {
            Ok(()) => {
                settlement::Entity::delete_by_id(row.settlement_id)
                    .exec(&txn)
                    .await?;
                settled += 1;
            }
            Err(err) => defer(&txn, row, &err.to_string()).await?,
        }
    }
    txn.commit().await?;
    if settled > 0 {
        metrics::counter!("orders_stock_settlements_retried_total").increment(settled as u64);
    }
    Ok(settled)
}
