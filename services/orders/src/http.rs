//! The orders API: each handler extracts, calls one use case ([`placing`],
//! [`listing`], [`transitions`], or the store for a single read), and shapes
//! the answer.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::address::Address;
use platform::auth::{AuthUser, Role};
use platform::extract::{Json, Path, Query, bulk_item_results, bulk_items};
use platform::pagination::Page;
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::domain::{self, Line, Status};
use crate::idempotency::{self, Claim, IdempotencyKey};
use crate::store::{self, OrderFilter, Stored};
use crate::{listing, placing, transitions};

/// One line of an order as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderItem {
    /// The product ordered (it may since have changed or gone).
    pub product_id: Uuid,
    /// Its name when ordered.
    pub name: String,
    /// Its unit price when ordered.
    pub unit_price_cents: i64,
    /// Units.
    pub quantity: i32,
}

/// An order as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Order {
    /// The order's id.
    pub order_id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// `created`, `paid`, `shipped`, `delivered` or `cancelled`.
    pub status: Status,
    /// The lines, with names and prices copied from the catalogue.
    pub items: Vec<OrderItem>,
    /// Sum of the lines.
    pub total_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Where it ships.
    pub shipping_address: Option<Address>,
    /// Optimistic-locking version.
    pub version: i32,
    /// Placed.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Stored> for Order {
    fn from(stored: Stored) -> Self {
        let order = stored.order;
        Self {
            order_id: order.order_id,
            user_id: order.user_id,
            status: order.status,
            items: stored
                .items
                .into_iter()
                .map(|item| OrderItem {
                    product_id: item.product_id,
                    name: item.name,
                    unit_price_cents: item.unit_price_cents,
                    quantity: item.quantity,
                })
                .collect(),
            total_cents: order.total_cents,
            currency: order.currency,
            shipping_address: order
                .shipping_address
                .and_then(|address| serde_json::from_value(address).ok()),
            version: order.version,
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

/// One item of `POST /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Whom the order is for (staff only; customers order for themselves).
    pub user_id: Option<Uuid>,
    /// What to order.
    pub items: Vec<Line>,
    /// Where to ship; the user's address when absent.
    pub shipping_address: Option<Address>,
}

/// One item of `PATCH /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The order to move.
    pub order_id: Uuid,
    /// The status it should have.
    pub status: Status,
    /// The version being changed; a stale one is a 412.
    pub version: Option<i32>,
}

/// The body of `PATCH /orders/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SingleStatusChange {
    /// The status it should have.
    pub status: Status,
    /// The version being changed; a stale one is a 412.
    pub version: Option<i32>,
}

/// Place orders (bulk, all or nothing).
#[utoipa::path(
    post, path = "/orders", tag = "orders",
    request_body = Vec<NewOrder>,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer; a different body is a 422")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Every order was placed", body = Vec<Order>),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "A customer ordering for someone else", body = platform::error::Problem),
        (status = 409, description = "An item lacks stock; nothing was ordered or held (`errors` name each order)", body = platform::error::Problem),
        (status = 422, description = "Invalid orders, unknown products or users, or a reused Idempotency-Key with another body", body = platform::error::Problem),
        (status = 503, description = "The products service is unavailable; nothing was ordered", body = platform::error::Problem),
    )
)]
pub async fn create_orders(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    let key = IdempotencyKey::from_headers(&headers)?;
    // Only a keyed request is compared with an earlier one.
    let fingerprint = key.as_ref().map(|_| idempotency::fingerprint(&body));
    let requested = bulk_item_results::<NewOrder>(body)?;
    let mut placements = placing::check_orders(&caller, requested)?;

    let mut claim_id = None;
    if let (Some(key), Some(fingerprint)) = (&key, &fingerprint) {
        let lease = state.idempotency_lease;
        match idempotency::claim(&state.db, caller.user_id, key.as_str(), fingerprint, lease)
            .await?
        {
            Claim::Fresh(id) => claim_id = Some(id),
            Claim::Replay { status, body } => {
                let mut response = (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED),
                    axum::Json(body),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert("idempotency-replayed", HeaderValue::from_static("true"));
                return Ok(response);
            }
            Claim::InProgress(lease_left) => {
                let mut response = ApiError::conflict(
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                )
                .into_response();
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    HeaderValue::from(lease_left.as_secs().max(1)),
                );
                return Ok(response);
            }
            Claim::Mismatch => {
                return Err(ApiError::invalid(
                    "Idempotency-Key",
                    "was used with a different body; use a new key for a new request",
                ));
            }
        }
    }
    let claim = key.as_ref().map(IdempotencyKey::as_str).zip(claim_id);
    let placed = placing::place(&state, &caller, &mut placements, claim).await;
    if placed.is_err()
        && let Some((key, claim_id)) = claim
    {
        idempotency::abandon(&state.db, caller.user_id, key, claim_id).await;
    }
    let orders = placed?;
    Ok((StatusCode::CREATED, axum::Json(orders)).into_response())
}

/// The query of `GET /orders`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// Ids for a bulk read, comma-separated (1 to 100); not combinable with filters.
    #[param(value_type = Option<Vec<Uuid>>, style = Form, explode = false, min_items = 1, max_items = 100)]
    pub ids: Option<String>,
    /// Only orders in this status.
    pub status: Option<Status>,
    /// Only this user's orders (customers always see only their own).
    pub user_id: Option<Uuid>,
    /// Placed at or after (RFC 3339).
    pub created_after: Option<String>,
    /// Placed before (RFC 3339).
    pub created_before: Option<String>,
    /// Lowest total in minor units.
    pub min_total: Option<i64>,
    /// Highest total in minor units.
    pub max_total: Option<i64>,
    /// Comma list of `created_at`, `total_cents`; `-` for descending. Default `-created_at`.
    pub sort: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List orders (a customer's own only), or read several by `ids`.
#[utoipa::path(
    get, path = "/orders", tag = "orders",
    params(OrderQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page (`{data, next_cursor}`), or with `ids` `{data, missing}`", body = Page<Order>),
        (status = 400, description = "A bad filter, sort, limit or cursor", body = platform::error::Problem),
        (status = 401, description = "No valid token", body = platform::error::Problem),
    )
)]
pub async fn list_orders(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(query): Query<OrderQuery>,
) -> ApiResult<Response> {
    if let Some(ids) = &query.ids {
        let found = listing::by_ids(&state, &caller, &query, ids).await?;
        return Ok(axum::Json(found).into_response());
    }
    // A customer asking for another's orders sees none.
    let Some(filter) = listing::filter_of(&caller, &query)? else {
        return Ok(axum::Json(Page::<Order>::empty()).into_response());
    };
    let page = listing::page_of(
        &state,
        filter,
        query.limit,
        query.cursor.as_deref(),
        query.sort.as_deref(),
    )
    .await?;
    Ok(axum::Json(page).into_response())
}

/// Read one order (a customer's own; another's is a 404).
#[utoipa::path(
    get, path = "/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 404, description = "No such order (or not the caller's)", body = platform::error::Problem),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Order>> {
    store::find_many(&state.db, &[id])
        .await?
        .pop()
        .filter(|s| domain::may_see(&caller, s.order.user_id))
        .map(|s| Json(Order::from(s)))
        .ok_or_else(|| not_found(id))
}

pub(crate) fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no order with id {id}"))
}

/// The query of `GET /users/{user_id}/orders`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A user's orders, newest first.
#[utoipa::path(
    get, path = "/users/{user_id}/orders", tag = "orders",
    params(("user_id" = Uuid, Path, description = "User id"), HistoryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's orders, newest first (an empty list when none)", body = Page<Order>),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "Another customer's history", body = platform::error::Problem),
    )
)]
pub async fn user_orders(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(user_id): Path<Uuid>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<Page<Order>>> {
    if !caller.is_self_or(user_id, &[Role::Support, Role::Admin]) {
        return Err(ApiError::Forbidden(
            "customers see only their own orders".into(),
        ));
    }
    let filter = OrderFilter {
        user_id: Some(user_id),
        ..OrderFilter::default()
    };
    Ok(Json(
        listing::page_of(&state, filter, query.limit, query.cursor.as_deref(), None).await?,
    ))
}

/// Change the status of several orders, all or nothing.
#[utoipa::path(
    patch, path = "/orders", tag = "orders",
    request_body = Vec<StatusChange>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every order changed", body = Vec<Order>),
        (status = 403, description = "A change the caller's role may not make (`errors` name each)", body = platform::error::Problem),
        (status = 404, description = "An order is unknown (or not the caller's)", body = platform::error::Problem),
        (status = 409, description = "A transition the status machine does not allow", body = platform::error::Problem),
        (status = 412, description = "A stale `version`", body = platform::error::Problem),
        (status = 422, description = "An `order_id` named more than once (`errors` give each index)", body = platform::error::Problem),
    )
)]
pub async fn update_orders(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(body): Json<Value>,
) -> ApiResult<Json<Vec<Order>>> {
    let changes: Vec<StatusChange> = bulk_items(body)?;
    platform::bulk::reject_repeats(changes.iter().map(|c| c.order_id), "order_id")?;
    Ok(Json(
        transitions::change_statuses(&state, &caller, &changes, true).await?,
    ))
}

/// Change the status of one order.
#[utoipa::path(
    patch, path = "/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    request_body = SingleStatusChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed order", body = Order),
        (status = 403, description = "A change the caller's role may not make", body = platform::error::Problem),
        (status = 404, description = "No such order (or not the caller's)", body = platform::error::Problem),
        (status = 409, description = "A transition the status machine does not allow; `allowed` names those it does", body = platform::error::Problem),
        (status = 412, description = "A stale `version`", body = platform::error::Problem),
    )
)]
pub async fn update_order(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(change): Json<SingleStatusChange>,
) -> ApiResult<Json<Order>> {
    let changes = [StatusChange {
        order_id: id,
        status: change.status,
        version: change.version,
    }];
    let mut changed = transitions::change_statuses(&state, &caller, &changes, false).await?;
    changed.pop().map(Json).ok_or_else(|| not_found(id))
}
