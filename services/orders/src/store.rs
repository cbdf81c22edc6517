//! Every SQL statement of the orders service.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use events::{Envelope, Event, OrderCreated, OrderLine, OrderStatusChanged};
use platform::pagination::{KeyKind, KeyValue, PageRequest, SortField};
use sea_orm::sea_query::{Expr, IntoColumnRef, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
};
use uuid::Uuid;

use crate::domain::Status;
use crate::entity::order::{self, Column, Entity as Orders};
use crate::entity::order_item;

/// The source events carry.
pub const SOURCE: &str = "orders";

/// An order with its lines.
#[derive(Debug, Clone)]
pub struct Stored {
    pub order: order::Model,
    /// Its lines, in order.
    pub items: Vec<order_item::Model>,
}

/// The fields `GET /orders` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderSort {
    /// Placement time.
    CreatedAt,
    /// Total.
    TotalCents,
}

impl SortField for OrderSort {
    const ALL: &'static [Self] = &[OrderSort::CreatedAt, OrderSort::TotalCents];

    fn name(self) -> &'static str {
        match self {
            OrderSort::CreatedAt => "created_at",
            OrderSort::TotalCents => "total_cents",
        }
    }

    fn kind(self) -> KeyKind {
        match self {
            OrderSort::CreatedAt => KeyKind::Time,
            OrderSort::TotalCents => KeyKind::Int,
        }
    }
}

impl OrderSort {
    fn column(self) -> Column {
        match self {
            OrderSort::CreatedAt => Column::CreatedAt,
            OrderSort::TotalCents => Column::TotalCents,
        }
    }

    /// This key's value in `row`, as a cursor carries it.
    pub fn key_of(self, row: &order::Model) -> KeyValue {
        match self {
            OrderSort::CreatedAt => KeyValue::Time(row.created_at),
            OrderSort::TotalCents => KeyValue::Int(row.total_cents),
        }
    }
}

/// The filters of `GET /orders`, already valid.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// Only this user's orders.
    pub user_id: Option<Uuid>,
    /// Only orders in this status.
    pub status: Option<Status>,
    /// Placed at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Placed before.
    pub created_before: Option<DateTime<Utc>>,
    /// Lowest total.
    pub min_total: Option<i64>,
    /// Highest total.
    pub max_total: Option<i64>,
}

fn column(column: Column) -> SimpleExpr {
    Expr::col((Orders, column).into_column_ref()).into()
}

/// Loads the lines of `orders` and pairs them up.
async fn with_items<C: ConnectionTrait>(
    db: &C,
    orders: Vec<order::Model>,
) -> Result<Vec<Stored>, DbErr> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let items = order_item::Entity::find()
        .filter(order_item::Column::OrderId.is_in(ids))
        .order_by_asc(order_item::Column::OrderId)
        .order_by_asc(order_item::Column::Line)
        .all(db)
        .await?;
    let mut by_order: HashMap<Uuid, Vec<order_item::Model>> = HashMap::new();
    for item in items {
        by_order.entry(item.order_id).or_default().push(item);
    }
    Ok(orders
        .into_iter()
        .map(|order| {
            let items = by_order.remove(&order.order_id).unwrap_or_default();
            Stored { order, items }
        })
        .collect())
}

/// One page of orders matching `filter`.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &DatabaseConnection,
    filter: &OrderFilter,
    page: &PageRequest<OrderSort>,
) -> Result<Vec<Stored>, DbErr> {
    let mut query = Orders::find();
    if let Some(user_id) = filter.user_id {
        query = query.filter(Column::UserId.eq(user_id));
    }
    if let Some(status) = &filter.status {
        query = query.filter(Column::Status.eq(*status));
    }
    if let Some(after) = filter.created_after {
        query = query.filter(Column::CreatedAt.gte(after));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(Column::CreatedAt.lt(before));
    }
    if let Some(min) = filter.min_total {
        query = query.filter(Column::TotalCents.gte(min));
    }
    if let Some(max) = filter.max_total {
        query = query.filter(Column::TotalCents.lte(max));
    }
    let query = page.apply(query, |key| column(key.column()), column(Column::OrderId));
    let orders = query.all(db).await?;
    with_items(db, orders).await
}

/// The orders with these ids.
#[tracing::instrument(skip(db))]
pub async fn find_many<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<Vec<Stored>, DbErr> {
    let orders = Orders::find()
        .filter(Column::OrderId.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    with_items(db, orders).await
}

/// Locks the orders with these ids (in id order, so bulk changes cannot deadlock).
pub async fn lock_many<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<Vec<Stored>, DbErr> {
    let orders = Orders::find()
        .filter(Column::OrderId.is_in(ids.iter().copied()))
        .order_by_asc(Column::OrderId)
        .lock_exclusive()
        .all(db)
        .await?;
    with_items(db, orders).await
}

/// Up to `limit` orders still `created` (unpaid) since before `window`,
/// locked; rows a request is changing right now are left for the next pass.
#[tracing::instrument(skip(db))]
pub async fn lock_unpaid<C: ConnectionTrait>(
    db: &C,
    window: std::time::Duration,
    limit: u64,
) -> Result<Vec<Stored>, DbErr> {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let orders = Orders::find()
        .filter(Column::Status.eq("created"))
        .filter(Column::CreatedAt.lt(cutoff))
        .order_by_asc(Column::CreatedAt)
        .limit(limit)
        .lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        )
        .all(db)
        .await?;
    with_items(db, orders).await
}

/// The event announcing a new order.
pub fn created_event(stored: &Stored) -> Envelope {
    Envelope::new(
        SOURCE,
        Event::OrderCreated(OrderCreated {
            order_id: stored.order.order_id,
            user_id: stored.order.user_id,
            items: stored
                .items
                .iter()
                .map(|item| OrderLine {
                    product_id: item.product_id,
                    name: item.name.clone(),
                    unit_price_cents: item.unit_price_cents,
                    quantity: item.quantity,
                })
                .collect(),
            total_cents: stored.order.total_cents,
            currency: stored.order.currency.clone(),
        }),
    )
}

/// The event announcing a status change.
pub fn status_event(order: &order::Model, from: Status) -> Envelope {
    Envelope::new(
        SOURCE,
        Event::OrderStatusChanged(OrderStatusChanged {
            order_id: order.order_id,
            user_id: order.user_id,
            from: from.as_str().to_owned(),
            to: order.status.as_str().to_owned(),
            version: order.version,
        }),
    )
}

/// The statements that insert orders and their lines, to run together.
pub fn inserts(orders: &[Stored]) -> Vec<Statement> {
    if orders.is_empty() {
        return Vec::new();
    }
    // A bulk request holds at most 1,000 orders: 10 parameters each stay far
    // below Postgres's 65,535. Lines are unbounded by comparison, so they go
    // as one array per column.
    let heads =
        order::Entity::insert_many(orders.iter().map(|s| s.order.clone().into_active_model()))
            .build(DbBackend::Postgres);
    let lines = orders.iter().flat_map(|s| &s.items);
    let (mut ids, mut numbers, mut products, mut names, mut prices, mut quantities) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for line in lines {
        ids.push(line.order_id);
        numbers.push(line.line);
        products.push(line.product_id);
        names.push(line.name.clone());
        prices.push(line.unit_price_cents);
        quantities.push(line.quantity);
    }
    let items = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO order_items (order_id, line, product_id, name, unit_price_cents, quantity)
         SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::uuid[], $4::text[], $5::int8[], $6::int4[])",
        [
            ids.into(),
            numbers.into(),
            products.into(),
            names.into(),
            prices.into(),
            quantities.into(),
        ],
    );
    vec![heads, items]
}

/// Sets the status of `order` (already locked) and bumps its version.
pub async fn set_status<C: ConnectionTrait>(
    db: &C,
    order: &order::Model,
    status: Status,
) -> Result<order::Model, DbErr> {
    let mut updated = order.clone();
    updated.status = status;
    updated.version += 1;
    updated.updated_at = Utc::now().trunc_subsecs(6);
    Orders::update_many()
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .col_expr(Column::Version, Expr::value(updated.version))
        .col_expr(Column::UpdatedAt, Expr::value(updated.updated_at))
        .filter(Column::OrderId.eq(order.order_id))
        .exec(db)
        .await?;
    Ok(updated)
}
