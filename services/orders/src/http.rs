//! The orders API: each handler extracts, applies the rules, calls the
//! products and users services and the store, and shapes the answer.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SubsecRound, Utc};
use platform::address::Address;
use platform::auth::{AuthUser, Role};
use platform::bulk::{Batch, parse_ids};
use platform::extract::{Json, Path, Query, bulk_items};
use platform::outbox::Outbox;
use platform::pagination::{Direction, KeyValue, Page, PageRequest};
use platform::writes::Writes;
use platform::{ApiError, ApiResult, FieldError};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::domain::{self, Line, Status};
use crate::entity::{order, order_item};
use crate::holds;
use crate::idempotency::{self, Claim};
use crate::settlement;
use crate::store::{self, OrderFilter, OrderSort, Stored};

/// One line of an order as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderItem {
    /// The product.
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
    /// The order.
    pub order_id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// `created`, `paid`, `shipped`, `delivered` or `cancelled`.
    pub status: String,
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
    /// The order.
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

/// An order being placed, checked and resolved.
struct Placement {
    user_id: Uuid,
    lines: Vec<Line>,
    address: Option<Address>,
}

fn parse_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible characters".into())
        })?;
    Ok(Some(key.to_owned()))
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
    let key = parse_key(&headers)?;
    let fingerprint = idempotency::fingerprint(&body);
    let requested: Vec<NewOrder> = bulk_items(body)?;
    let mut placements = check_orders(&caller, requested)?;

    let mut claim_id = None;
    if let Some(key) = &key {
        let lease = state.idempotency_lease;
        match idempotency::claim(&state.db, caller.user_id, key, &fingerprint, lease).await? {
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
    let claim = key.as_deref().zip(claim_id);
    let placed = place(&state, &caller, &mut placements, claim).await;
    if placed.is_err()
        && let Some((key, claim_id)) = claim
    {
        idempotency::abandon(&state.db, caller.user_id, key, claim_id).await;
    }
    let orders = placed?;
    Ok((StatusCode::CREATED, axum::Json(orders)).into_response())
}

/// Checks each order before anything is reserved.
fn check_orders(caller: &AuthUser, requested: Vec<NewOrder>) -> ApiResult<Vec<Placement>> {
    let mut placements = Vec::with_capacity(requested.len());
    let mut errors = Vec::new();
    for (index, order) in requested.into_iter().enumerate() {
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
        errors.extend(
            domain::check_lines(&order.items)
                .into_iter()
                .map(|e| e.at(index)),
        );
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
async fn place(
    state: &AppState,
    caller: &AuthUser,
    placements: &mut [Placement],
    claim: Option<(&str, Uuid)>,
) -> ApiResult<Vec<Order>> {
    resolve_users(state, caller, placements).await?;

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
        .map_err(|err| per_order(err, &order_of_line))?;
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
                        quantity: item.quantity,
                    })
            })
            .collect();
        let currencies: Vec<&str> = placement
            .lines
            .iter()
            .filter_map(|item| {
                catalogue
                    .get(&item.product_id)
                    .map(|held| held.currency.as_str())
            })
            .collect();
        if currencies.windows(2).any(|pair| pair[0] != pair[1]) {
            errors.push(
                FieldError::new("items", "mixes currencies; order each currency separately")
                    .at(index),
            );
            continue;
        }
        let total_cents = items
            .iter()
            .map(|item| item.unit_price_cents * i64::from(item.quantity))
            .sum();
        stored.push(Stored {
            order: order::Model {
                order_id,
                user_id: placement.user_id,
                status: Status::Created.as_str().to_owned(),
                total_cents,
                currency: currencies.first().copied().unwrap_or("EUR").to_owned(),
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
                return Err(if idempotency::is_claim_lost(&err) {
                    ApiError::conflict(
                        "a retry with this Idempotency-Key took this request over; its answer is the one that counts",
                    )
                } else if holds::was_given_up(&err) {
                    ApiError::ServiceUnavailable(
                        "the stock held for these orders lapsed before they could be written; nothing was ordered, try again".into(),
                    )
                } else {
                    err.into()
                });
            }
            // The answer is the orders after all.
            WriteOutcome::Committed => {
                tracing::warn!(%reservation_id, error = %err, "the orders' write failed to answer but committed");
            }
            // Keep the hold. Settlement confirms it if the orders exist; if
            // they do not, it lapses like any unused hold.
            WriteOutcome::Unknown => return Err(err.into()),
        }
    }
    state.outbox.notify();
    metrics::counter!("orders_placed_total").increment(stored.len() as u64);
    // Confirmations go in batches: the worker takes this one with its neighbours.
    state.settlements.notify_one();
    Ok(orders)
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

/// The query of `GET /orders`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// Comma-separated ids for a bulk read (up to 100); not combinable with filters.
    pub ids: Option<String>,
    /// `created`, `paid`, `shipped`, `delivered` or `cancelled`.
    pub status: Option<String>,
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

fn parse_time(name: &str, raw: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::BadRequest(format!("`{name}` must be an RFC 3339 time")))
    })
    .transpose()
}

const NEWEST_FIRST: &[(OrderSort, Direction)] = &[(OrderSort::CreatedAt, Direction::Desc)];

async fn page_of(
    state: &AppState,
    filter: OrderFilter,
    limit: Option<i64>,
    cursor: Option<&str>,
    sort: Option<&str>,
) -> ApiResult<Page<Order>> {
    let page = PageRequest::parse(limit, cursor, sort, NEWEST_FIRST)?;
    let rows = store::list(&state.db, &filter, &page).await?;
    let result = page.finish(rows, |row| {
        let mut keys: Vec<KeyValue> = page
            .sort
            .keys
            .iter()
            .map(|(k, _)| k.key_of(&row.order))
            .collect();
        keys.push(KeyValue::Uuid(row.order.order_id));
        keys
    });
    Ok(result.map(Order::from))
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
        let filtered = query.status.is_some()
            || query.user_id.is_some()
            || query.created_after.is_some()
            || query.created_before.is_some()
            || query.min_total.is_some()
            || query.max_total.is_some()
            || query.sort.is_some()
            || query.limit.is_some()
            || query.cursor.is_some();
        if filtered {
            return Err(ApiError::BadRequest(
                "`ids` reads by id and cannot be combined with filters or paging".into(),
            ));
        }
        let ids = parse_ids(ids)?;
        let found: Vec<Order> = store::find_many(&state.db, &ids)
            .await?
            .into_iter()
            .filter(|s| domain::may_see(&caller, s.order.user_id))
            .map(Order::from)
            .collect();
        return Ok(axum::Json(Batch::collect(&ids, found, |o| o.order_id)).into_response());
    }
    let status = match query.status.as_deref() {
        None => None,
        Some(raw) => Some(
            Status::parse(raw)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("`status` `{raw}` is not an order status"))
                })?
                .as_str()
                .to_owned(),
        ),
    };
    for (name, value) in [
        ("min_total", query.min_total),
        ("max_total", query.max_total),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(ApiError::BadRequest(format!(
                "`{name}` must not be negative"
            )));
        }
    }
    // A customer sees only its own orders, whatever it asks for.
    let user_id = if caller.is_staff() {
        query.user_id
    } else {
        match query.user_id {
            Some(other) if other != caller.user_id => {
                return Ok(axum::Json(Page::<Order> {
                    data: Vec::new(),
                    next_cursor: None,
                })
                .into_response());
            }
            _ => Some(caller.user_id),
        }
    };
    let filter = OrderFilter {
        user_id,
        status,
        created_after: parse_time("created_after", query.created_after.as_deref())?,
        created_before: parse_time("created_before", query.created_before.as_deref())?,
        min_total: query.min_total,
        max_total: query.max_total,
    };
    let page = page_of(
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

fn not_found(id: Uuid) -> ApiError {
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
        page_of(&state, filter, query.limit, query.cursor.as_deref(), None).await?,
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
        change_statuses(&state, &caller, &changes, true).await?,
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
    let mut changed = change_statuses(&state, &caller, &changes, false).await?;
    changed.pop().map(Json).ok_or_else(|| not_found(id))
}

/// Applies status changes in one transaction; cancellations give their stock back.
async fn change_statuses(
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
        let from = Status::parse(&stored.order.status).unwrap_or(Status::Created);
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
        let updated = store::set_status(&txn, &stored.order, to.as_str()).await?;
        events.push(store::status_event(&updated, &stored.order.status));
        if *to == Status::Cancelled {
            let lines: Vec<Line> = stored
                .items
                .iter()
                .map(|item| Line {
                    product_id: item.product_id,
                    quantity: item.quantity,
                })
                .collect();
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
