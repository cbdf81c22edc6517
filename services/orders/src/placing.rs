//! Placing orders: check each order, resolve its user and address, hold
//! the stock of the whole request in one reservation, and write the orders,
//! their events, the confirmation to hand over and the stored idempotent
//! answer in one statement; when the write fails, give the stock back only
//! if nothing was written.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{SubsecRound, Utc};
use platform::address::Address;
use platform::auth::AuthUser;
use platform::error::{InStep, OnConstraint};
use platform::money::{Money, MoneyError};
use platform::outbox::Outbox;
use platform::writes::Writes;
use platform::{ApiError, ApiResult, FieldError};
use uuid::Uuid;

use crate::AppState;
use crate::domain::{self, Line, Status};
use crate::entity::{order, order_item};
use crate::holds;
use crate::http::{NewOrder, Order};
use crate::idempotency;
use crate::peers::HeldLine;
use crate::settlement;
use crate::store::{self, Stored};

/// An order being placed, checked and resolved.
pub struct Placement {
    user_id: Uuid,
    lines: Vec<Line>,
    address: Option<Address>,
}

/// Checks each order before anything is reserved. An order that did not
/// decode (a quantity out of range, say) is reported with the failures of
/// the others, so one answer names every invalid order.
pub fn check_orders(
    caller: &AuthUser,
    requested: Vec<Result<NewOrder, FieldError>>,
) -> ApiResult<Vec<Placement>> {
    let mut placements = Vec::with_capacity(requested.len());
    let mut errors = Vec::new();
    for (index, order) in requested.into_iter().enumerate() {
        let order = match order {
            Ok(order) => order,
            Err(undecoded) => {
                errors.push(undecoded);
                continue;
            }
        };
        let user_id = match domain::orderer(caller, order.user_id) {
            Ok(user_id) => user_id,
            Err(message) => {
                return Err(ApiError::Items {
                    status: StatusCode::FORBIDDEN,
                    detail: message.clone(),
                    errors: vec![FieldError::new("user_id", message).at(index)],
                });
            }
        };
        errors.extend(domain::check_lines(&order.items).map(|e| e.at(index)));
        let address = match &order.shipping_address {
            None => None,
            Some(raw) => match raw.parse("shipping_address") {
                Ok(address) => Some(address),
                Err(failures) => {
                    errors.extend(failures.into_iter().map(|e| e.at(index)));
                    None
                }
            },
        };
        placements.push(Placement {
            user_id,
            lines: order.items,
            address,
        });
    }
    if errors.is_empty() {
        Ok(placements)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Resolves users, reserves stock, writes the orders, confirms the stock.
pub async fn place(
    state: &AppState,
    caller: &AuthUser,
    placements: &mut [Placement],
    claim: Option<(&str, Uuid)>,
) -> ApiResult<Vec<Order>> {
    resolve_users(state, caller, placements)
        .await
        .in_step("resolve the orders' users")?;

    // One reservation for the whole request: all of it is held, or none.
    let reservation_id = Uuid::now_v7();
    let mut lines = Vec::new();
    let mut order_of_line = Vec::new();
    for (index, placement) in placements.iter().enumerate() {
        lines.extend(placement.lines.iter().copied());
        order_of_line.extend(std::iter::repeat_n(index, placement.lines.len()));
    }
    let reservation = state
        .products
        .reserve(reservation_id, &lines)
        .await
        .map_err(|err| per_order(err, &order_of_line))
        .in_step("hold the stock")?;
    let catalogue: HashMap<Uuid, _> = reservation
        .items
        .into_iter()
        .map(|line| (line.product_id, line))
        .collect();

    let now = Utc::now().trunc_subsecs(6);
    let mut stored = Vec::with_capacity(placements.len());
    let mut errors = Vec::new();
    for (index, placement) in placements.iter().enumerate() {
        let order_id = Uuid::now_v7();
        let items: Vec<order_item::Model> = placement
            .lines
            .iter()
            .enumerate()
            .filter_map(|(line, item)| {
                catalogue
                    .get(&item.product_id)
                    .map(|held| order_item::Model {
                        order_id,
                        line: line as i32,
                        product_id: item.product_id,
                        name: held.name.clone(),
                        unit_price_cents: held.unit_price_cents,
                        quantity: item.quantity.get(),
                    })
            })
            .collect();
        let total = match order_total(&placement.lines, &catalogue) {
            Ok(Ok(total)) => total,
            Ok(Err(refused)) => {
                let message = match refused {
                    MoneyError::MixedCurrencies(..) => {
                        "mixes currencies; order each currency separately"
                    }
                    MoneyError::Negative | MoneyError::TooLarge => {
                        "add up to more than one order may cost"
                    }
                };
                errors.push(FieldError::new("items", message).at(index));
                continue;
            }
            Err(err) => {
                give_back(state, reservation_id).await;
                return Err(err.in_step("price the orders"));
            }
        };
        stored.push(Stored {
            order: order::Model {
                order_id,
                user_id: placement.user_id,
                status: Status::Created,
                total_cents: total.cents(),
                currency: total.currency().to_string(),
                shipping_address: placement
                    .address
                    .as_ref()
                    .and_then(|a| serde_json::to_value(a).ok()),
                reservation_id,
                version: 1,
                created_at: now,
                updated_at: now,
            },
            items,
        });
    }
    if !errors.is_empty() {
        give_back(state, reservation_id).await;
        return Err(ApiError::validation(errors));
    }

    let confirm = settlement::confirm(reservation_id);
    let orders: Vec<Order> = stored.iter().cloned().map(Order::from).collect();
    // The orders, their events, the confirmation to hand over and the stored
    // answer: all committed, or none, in one round trip.
    let written = async {
        let mut writes = Writes::new();
        writes.extend(store::inserts(&stored));
        let events: Vec<_> = stored.iter().map(store::created_event).collect();
        writes.extend(Outbox::insert(&events)?);
        writes.extend(settlement::insert(std::slice::from_ref(&confirm)));
        writes.push(holds::ordered(reservation_id));
        if let Some((key, claim_id)) = claim {
            let body =
                serde_json::to_value(&orders).map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
            writes.push(idempotency::completion(
                caller.user_id,
                key,
                claim_id,
                201,
                body,
            ));
        }
        writes.execute(&state.db).await
    }
    .await;
    if let Err(err) = written {
        match outcome_of_failed_write(state, &stored, &err).await {
            WriteOutcome::NotCommitted => {
                give_back(state, reservation_id).await;
                if idempotency::is_claim_lost(&err) {
                    return Err(ApiError::conflict(
                        "a retry with this Idempotency-Key took this request over; its answer is the one that counts",
                    ));
                }
                return Err(err)
                    .on_constraint(&[holds::DECIDED], || {
                        ApiError::ServiceUnavailable(
                            "the stock held for these orders lapsed before they could be written; nothing was ordered, try again".into(),
                        )
                    })
                    .in_step("write the orders");
            }
            // The answer is the orders after all.
            WriteOutcome::Committed => {
                tracing::warn!(%reservation_id, error = %err, "the orders' write failed to answer but committed");
            }
            // Keep the hold. Settlement confirms it if the orders exist; if
            // they do not, it lapses like any unused hold.
            WriteOutcome::Unknown => return Err(ApiError::from(err).in_step("write the orders")),
        }
    }
    state.outbox.notify();
    metrics::counter!("orders_placed_total").increment(stored.len() as u64);
    // Confirmations go in batches: the worker takes this one with its neighbours.
    state.settlements.notify_one();
    Ok(orders)
}

/// What the lines of one order cost at the prices products held them at: a
/// refusal when they do not add up (currencies mixed), an error when products
/// answered something that is no price.
fn order_total(
    lines: &[Line],
    catalogue: &HashMap<Uuid, HeldLine>,
) -> ApiResult<Result<Money, MoneyError>> {
    let mut total: Option<Money> = None;
    for line in lines {
        let Some(held) = catalogue.get(&line.product_id) else {
            continue;
        };
        let cost = match held.unit_price()?.times(line.quantity) {
            Ok(cost) => cost,
            Err(refused) => return Ok(Err(refused)),
        };
        let sum = match &total {
            None => Ok(cost),
            Some(sum) => sum.plus(&cost),
        };
        match sum {
            Ok(sum) => total = Some(sum),
            Err(refused) => return Ok(Err(refused)),
        }
    }
    total
        .map(Ok)
        .ok_or_else(|| ApiError::BadGateway("products held none of an order's products".into()))
}

/// What a write of orders that answered with an error left behind.
enum WriteOutcome {
    /// Nothing: the server refused the statement, and a statement is atomic.
    NotCommitted,
    /// The orders: the connection broke after the commit was sent.
    Committed,
    /// Cannot be known now (the database is still away).
    Unknown,
}

/// Finds out what a failed write of `stored` left behind. Stock is given
/// back only when nothing was: giving back the stock of orders that exist
/// would sell it twice.
async fn outcome_of_failed_write(
    state: &AppState,
    stored: &[Stored],
    err: &sea_orm::DbErr,
) -> WriteOutcome {
    let Some(first) = stored.first() else {
        return WriteOutcome::NotCommitted;
    };
    if !platform::db::is_unavailable_orm(err) {
        return WriteOutcome::NotCommitted;
    }
    match store::find_many(&state.db, &[first.order.order_id]).await {
        Ok(found) if found.is_empty() => WriteOutcome::NotCommitted,
        Ok(_) => WriteOutcome::Committed,
        Err(_) => WriteOutcome::Unknown,
    }
}

/// Releases a reservation no order will use; if that fails too, it lapses.
async fn give_back(state: &AppState, reservation_id: Uuid) {
    if let Err(err) = state.products.release(reservation_id, None).await {
        tracing::warn!(%reservation_id, error = %err, "could not release an unused reservation; it will lapse");
    }
}

/// Maps the products service's line indexes to the orders they belong to.
fn per_order(err: ApiError, order_of_line: &[usize]) -> ApiError {
    let remap = |errors: Vec<FieldError>| -> Vec<FieldError> {
        errors
            .into_iter()
            .map(|mut e| {
                e.index = e.index.and_then(|line| order_of_line.get(line).copied());
                e.field = format!("items.{}", e.field);
                e
            })
            .collect()
    };
    match err {
        ApiError::Conflict {
            detail,
            errors,
            allowed,
        } => ApiError::Conflict {
            detail: detail.replace("reserved", "ordered or held"),
            errors: remap(errors),
            allowed,
        },
        ApiError::Validation { detail, errors } => ApiError::Validation {
            detail: detail.replace("reserved", "ordered"),
            errors: remap(errors),
        },
        other => other,
    }
}

/// Fills in missing addresses from profiles, and checks that users staff order for exist.
async fn resolve_users(
    state: &AppState,
    caller: &AuthUser,
    placements: &mut [Placement],
) -> ApiResult<()> {
    let mut wanted: Vec<Uuid> = placements
        .iter()
        .filter(|p| p.address.is_none() || p.user_id != caller.user_id)
        .map(|p| p.user_id)
        .collect();
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(());
    }
    let profiles: HashMap<Uuid, Option<Address>> = state
        .users
        .profiles(&wanted)
        .await?
        .into_iter()
        .map(|p| (p.user_id, p.address))
        .collect();
    let mut errors = Vec::new();
    for (index, placement) in placements.iter_mut().enumerate() {
        if !wanted.contains(&placement.user_id) {
            continue;
        }
        match profiles.get(&placement.user_id) {
            None => errors.push(FieldError::new("user_id", "no such user").at(index)),
            Some(address) if placement.address.is_none() => match address {
                Some(address) => placement.address = Some(address.clone()),
                None => errors.push(
                    FieldError::new(
                        "shipping_address",
                        "is required: the user has no address on file",
                    )
                    .at(index),
                ),
            },
            Some(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}
