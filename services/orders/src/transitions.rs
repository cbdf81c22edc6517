//! Moving orders through their statuses: who may make which move, stale
//! versions, and cancellations that hand their stock back.

use std::collections::HashMap;

use platform::auth::AuthUser;
use platform::quantity::Quantity;
use platform::{ApiError, ApiResult, FieldError};
use sea_orm::TransactionTrait;
use uuid::Uuid;

use crate::AppState;
use crate::domain::{self, Line, Status};
use crate::http::{Order, StatusChange, not_found};
use crate::settlement;
use crate::store::{self, Stored};

/// Applies status changes in one transaction; cancellations give their stock back.
pub async fn change_statuses(
    state: &AppState,
    caller: &AuthUser,
    changes: &[StatusChange],
    bulk: bool,
) -> ApiResult<Vec<Order>> {
    let ids: Vec<Uuid> = changes.iter().map(|c| c.order_id).collect();
    let txn = state.db.begin().await?;
    let current: HashMap<Uuid, Stored> = store::lock_many(&txn, &ids)
        .await?
        .into_iter()
        .map(|s| (s.order.order_id, s))
        .collect();
    let mut failures: Vec<(usize, ApiError)> = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let Some(stored) = current
            .get(&change.order_id)
            .filter(|s| domain::may_see(caller, s.order.user_id))
        else {
            failures.push((index, not_found(change.order_id)));
            continue;
        };
        if change.version.is_some_and(|v| v != stored.order.version) {
            failures.push((
                index,
                ApiError::PreconditionFailed(format!(
                    "order {} is at version {}, not {}",
                    change.order_id,
                    stored.order.version,
                    change.version.unwrap_or_default()
                )),
            ));
            continue;
        }
        let from = stored.order.status;
        if let Err(err) = domain::check_move(caller, stored.order.user_id, from, change.status) {
            failures.push((index, err));
        }
    }
    if let Some((_, first)) = failures.first() {
        if !bulk {
            return Err(failures.remove(0).1);
        }
        let status = first.status();
        let errors = failures
            .iter()
            .map(|(index, err)| FieldError::new("status", err.to_string()).at(*index))
            .collect();
        return Err(ApiError::Items {
            status,
            detail: "some orders cannot change; nothing was changed".into(),
            errors,
        });
    }
    let moves: Vec<(&Stored, Status)> = changes
        .iter()
        .map(|change| (&current[&change.order_id], change.status))
        .collect();
    let changed = move_orders(state, txn, &moves).await?;
    Ok(changed.into_iter().map(Order::from).collect())
}

/// Moves each order to its new status in `txn` and commits: the rows, their
/// events, and for cancellations the stock handed back (at once, and kept as
/// a settlement to retry until products has it).
pub(crate) async fn move_orders(
    state: &AppState,
    txn: sea_orm::DatabaseTransaction,
    moves: &[(&Stored, Status)],
) -> Result<Vec<Stored>, ApiError> {
    let mut changed = Vec::with_capacity(moves.len());
    let mut releases = Vec::new();
    let mut events = Vec::new();
    for (stored, to) in moves {
        let updated = store::set_status(&txn, &stored.order, *to).await?;
        events.push(store::status_event(&updated, stored.order.status));
        if *to == Status::Cancelled {
            let lines = stored
                .items
                .iter()
                .map(|item| {
                    // Every stored line was a parsed quantity when it was written.
                    let quantity = Quantity::try_from(item.quantity).map_err(|_| {
                        anyhow::anyhow!(
                            "order {} line {} holds {} units",
                            item.order_id,
                            item.line,
                            item.quantity
                        )
                    })?;
                    Ok(Line {
                        product_id: item.product_id,
                        quantity,
                    })
                })
                .collect::<ApiResult<Vec<Line>>>()?;
            releases.push(settlement::release(
                stored.order.reservation_id,
                stored.order.order_id,
                &lines,
            ));
        }
        changed.push(Stored {
            order: updated,
            items: stored.items.clone(),
        });
    }
    state.outbox.enqueue(&txn, &events).await?;
    settlement::record(&txn, &releases).await?;
    txn.commit().await?;
    state.outbox.notify();
    settlement::release_now(&state.db, &state.products, &releases).await;
    Ok(changed)
}
