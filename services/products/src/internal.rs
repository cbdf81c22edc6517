//! Stock reservations for the orders service (never routed by the gateway).

use axum::extract::State;
use axum::http::StatusCode;
use platform::extract::{Json, Path};
use platform::internal::InternalCaller;
use platform::{ApiError, ApiResult, FieldError};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::http::cache_record;
use crate::stock::{self, Line, Reservation};

/// Most lines one reservation may hold.
pub const MAX_LINES: usize = 100_000;

/// `POST /internal/reservations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    /// Chosen by the caller; retrying with the same id reserves nothing new.
    pub reservation_id: Uuid,
    /// What to hold.
    pub items: Vec<Line>,
}

/// Puts moved products' new versions in the cache; drops cached lists when
/// something sold out or came back.
pub async fn refresh_caches(state: &AppState, moved: &stock::Moved) {
    let records: Vec<_> = moved.products.iter().map(cache_record).collect();
    state.cache.put_many(&records).await;
    if moved.availability_changed {
        state.lists.invalidate().await;
    }
}

/// Holds stock for every line, or none (409 naming each short line).
pub async fn reserve(
    State(state): State<AppState>,
    _: InternalCaller,
    Json(body): Json<ReserveBody>,
) -> ApiResult<(StatusCode, Json<Reservation>)> {
    if body.items.is_empty() || body.items.len() > MAX_LINES {
        return Err(ApiError::invalid(
            "items",
            format!("must hold 1 to {MAX_LINES} lines"),
        ));
    }
    let bad: Vec<FieldError> = body
        .items
        .iter()
        .enumerate()
        .filter(|(_, line)| !(1..=1_000_000).contains(&line.quantity))
        .map(|(i, _)| FieldError::new("quantity", "must be 1 to 1000000").at(i))
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::validation(bad));
    }
    let reserved = stock::reserve(
        &state.db,
        &state.outbox,
        body.reservation_id,
        &body.items,
        state.hold_for,
    )
    .await?;
    refresh_caches(&state, &reserved.moved).await;
    let status = if reserved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(reserved.reservation)))
}

/// A reservation.
pub async fn get(
    State(state): State<AppState>,
    _: InternalCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Reservation>> {
    stock::find(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no reservation {id}")))
}

/// The order exists: the hold becomes permanent.
pub async fn confirm(
    State(state): State<AppState>,
    _: InternalCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    stock::confirm(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The order failed or was cancelled: the units return to stock.
pub async fn release(
    State(state): State<AppState>,
    _: InternalCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let moved = stock::release(&state.db, &state.outbox, id).await?;
    refresh_caches(&state, &moved).await;
    Ok(StatusCode::NO_CONTENT)
}
