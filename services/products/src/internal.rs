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
use crate::stock::{self, ConfirmRefused, Line, ReleaseRefused, Reservation, ReserveRefused};

/// Most lines one reservation may hold.
pub const MAX_LINES: usize = 100_000;

/// `POST /internal/reservations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    /// Chosen by the caller; retrying with the same id reserves nothing new.
    pub reservation_id: Uuid,
    /// What to hold (each line's quantity parsed with the body).
    pub items: Vec<Line>,
}

/// Puts moved products' new versions in the cache; drops cached lists when
/// something sold out or came back.
pub async fn refresh_caches(state: &AppState, moved: &stock::Moved) {
    let records: Vec<_> = moved.products.iter().map(cache_record).collect();
    state.cache.replace_many(&records).await;
    if moved.availability_changed {
        state.lists.invalidate().await;
    }
}

fn no_reservation(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no reservation {id}"))
}

/// A 422 for a line naming no product, a 409 naming each short line.
fn reserve_refused(refused: ReserveRefused) -> ApiError {
    match refused {
        ReserveRefused::Unknown { product_id, index } => ApiError::Validation {
            detail: format!("no product with id {product_id}; nothing was reserved"),
            errors: vec![FieldError::new("product_id", "no such product").at(index)],
        },
        ReserveRefused::Short(short) => ApiError::Conflict {
            detail: "not enough stock; nothing was reserved".into(),
            errors: short
                .into_iter()
                .map(|s| {
                    FieldError::new(
                        "quantity",
                        format!(
                            "product {} has {} in stock, {} wanted",
                            s.product_id, s.stock, s.wanted
                        ),
                    )
                    .at(s.index)
                })
                .collect(),
            allowed: None,
        },
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
    let reserved = stock::reserve(
        &state.db,
        &state.outbox,
        body.reservation_id,
        &body.items,
        state.hold_for,
    )
    .await?
    .map_err(reserve_refused)?;
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
    match stock::confirm(&state.db, id).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(ConfirmRefused::NotFound) => Err(no_reservation(id)),
        Err(ConfirmRefused::Released) => Err(ApiError::conflict(
            "the reservation was released (it expired or was cancelled)",
        )),
    }
}

/// `POST /internal/reservations/confirmations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmations {
    /// Reservations whose orders now exist.
    pub reservation_ids: Vec<Uuid>,
}

/// Confirms many reservations at once; answers those that were released meanwhile.
pub async fn confirm_many(
    State(state): State<AppState>,
    _: InternalCaller,
    Json(body): Json<Confirmations>,
) -> ApiResult<Json<serde_json::Value>> {
    if body.reservation_ids.is_empty() || body.reservation_ids.len() > 10_000 {
        return Err(ApiError::invalid(
            "reservation_ids",
            "must name 1 to 10000 reservations",
        ));
    }
    let released = stock::confirm_many(&state.db, &body.reservation_ids).await?;
    Ok(Json(serde_json::json!({ "released": released })))
}

/// `POST /internal/reservations/{id}/release` with a body: release only these
/// lines, once per `release_id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialRelease {
    /// Names this part (an order id); a retry with it releases nothing more.
    pub release_id: Uuid,
    /// The units to give back.
    pub items: Vec<Line>,
}

/// The order failed or was cancelled: the units return to stock (all of the
/// reservation with no body or `{}`; the named lines with a [`PartialRelease`]).
pub async fn release(
    State(state): State<AppState>,
    _: InternalCaller,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let whole = body.iter().all(u8::is_ascii_whitespace)
        || serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()));
    let moved = if whole {
        stock::release(&state.db, &state.outbox, id)
            .await?
            .ok_or_else(|| no_reservation(id))?
    } else {
        let part: PartialRelease = serde_json::from_slice(&body)
            .map_err(|err| ApiError::BadRequest(format!("malformed release: {err}")))?;
        match stock::release_part(&state.db, &state.outbox, id, part.release_id, &part.items)
            .await?
        {
            Ok(moved) => moved,
            Err(ReleaseRefused::NotFound) => return Err(no_reservation(id)),
            Err(ReleaseRefused::MoreThanHeld {
                product_id,
                holds,
                wanted,
            }) => {
                return Err(ApiError::conflict(format!(
                    "reservation {id} holds {holds} of product {product_id}, not {wanted}"
                )));
            }
        }
    };
    refresh_caches(&state, &moved).await;
    Ok(StatusCode::NO_CONTENT)
}
