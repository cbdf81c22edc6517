//! Reading orders in lists: the filters of `GET /orders` (a customer's own
//! orders only, whatever it asks), keyset pages in any allowed sort, and
//! bulk reads by id.

use chrono::{DateTime, Utc};
use platform::auth::AuthUser;
use platform::bulk::{Batch, parse_ids};
use platform::pagination::{Direction, KeyValue, Page, PageRequest};
use platform::{ApiError, ApiResult};

use crate::AppState;
use crate::domain;
use crate::http::{Order, OrderQuery};
use crate::store::{self, OrderFilter, OrderSort};

/// The orders named by `ids` (a comma list) that the caller may see; the
/// query must carry nothing else.
pub async fn by_ids(
    state: &AppState,
    caller: &AuthUser,
    query: &OrderQuery,
    ids: &str,
) -> ApiResult<Batch<Order>> {
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
        .filter(|s| domain::may_see(caller, s.order.user_id))
        .map(Order::from)
        .collect();
    Ok(Batch::collect(&ids, found, |o| o.order_id))
}

/// The filter `query` asks for; `None` when a customer asks for another
/// user's orders (it sees none).
pub fn filter_of(caller: &AuthUser, query: &OrderQuery) -> ApiResult<Option<OrderFilter>> {
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
    let user_id = if caller.is_staff() {
        query.user_id
    } else {
        match query.user_id {
            Some(other) if other != caller.user_id => return Ok(None),
            _ => Some(caller.user_id),
        }
    };
    Ok(Some(OrderFilter {
        user_id,
        status: query.status,
        created_after: parse_time("created_after", query.created_after.as_deref())?,
        created_before: parse_time("created_before", query.created_before.as_deref())?,
        min_total: query.min_total,
        max_total: query.max_total,
    }))
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

pub async fn page_of(
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
