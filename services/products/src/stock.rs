//! Stock reservations: hold units for an order atomically, confirm them when
//! the order is written, release them when it is not (or is cancelled), and
//! settle holds nobody confirmed in time the way the orders service decides
//! (see [`crate::lapsed`]).
//!
//! Product rows are always locked in product-id order, so concurrent
//! reservations cannot deadlock, and nothing slow happens while they are held.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use events::Envelope;
use platform::outbox::{self, Outbox};
use platform::quantity::Quantity;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::entity::product::{self, Model as Product};
use crate::entity::{reservation, reservation_item};
use crate::store::{UPDATED_EVENT_SQL, updated_event, updated_frame};

/// One line of a reservation request.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub product_id: Uuid,
    /// Units wanted.
    pub quantity: Quantity,
}

/// A held (or confirmed) line, with the catalogue's name and price at the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLine {
    pub product_id: Uuid,
    /// Units held.
    pub quantity: i32,
    /// The product's name.
    pub name: String,
    /// Its unit price.
    pub unit_price_cents: i64,
    pub currency: String,
}

/// A reservation as the orders service sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Its id (the caller's idempotency key).
    pub reservation_id: Uuid,
    /// `held`, `confirmed` or `released`.
    pub status: String,
    /// When a `held` reservation lapses.
    pub expires_at: DateTime<Utc>,
    /// What it holds, one line per product.
    pub items: Vec<HeldLine>,
}

/// The outcome of a reservation request.
#[derive(Debug)]
pub struct Reserved {
    pub reservation: Reservation,
    /// False when the id was already known and nothing new was held.
    pub created: bool,
    /// What the hold moved.
    pub moved: Moved,
}

/// Products whose stock a change moved.
#[derive(Debug, Default)]
pub struct Moved {
    /// The products as they are now (for the cache).
    pub products: Vec<Product>,
    /// True when one of them sold out or came back: `in_stock` lists change
    /// then, not with every unit.
    pub availability_changed: bool,
}

impl Moved {
    fn merge(&mut self, other: Moved) {
        self.products.extend(other.products);
        self.availability_changed |= other.availability_changed;
    }
}

/// Why a reservation was refused; nothing was held.
#[derive(Debug)]
pub enum ReserveRefused {
    /// No live product has the id the line at `index` names.
    Unknown { product_id: Uuid, index: usize },
    /// These products have fewer units than their lines want together.
    Short(Vec<Shortage>),
}

/// A product short of what a reservation wants of it.
#[derive(Debug)]
pub struct Shortage {
    pub product_id: Uuid,
    /// Units in stock now.
    pub stock: i32,
    /// Units its lines want together.
    pub wanted: i32,
    /// The first line naming it.
    pub index: usize,
}

/// Why a confirmation was refused.
#[derive(Debug)]
pub enum ConfirmRefused {
    NotFound,
    /// Its units went back to stock (it lapsed or was cancelled).
    Released,
}

/// Why a partial release was refused; nothing was released.
#[derive(Debug)]
pub enum ReleaseRefused {
    NotFound,
    /// The lines give back more of a product than the reservation holds.
    MoreThanHeld {
        product_id: Uuid,
        holds: i32,
        wanted: i32,
    },
}

async fn load<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Reservation>, DbErr> {
    let Some(head) = reservation::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let items = reservation_item::Entity::find()
        .filter(reservation_item::Column::ReservationId.eq(id))
        .order_by_asc(reservation_item::Column::ProductId)
        .all(db)
        .await?
        .into_iter()
        .map(|item| HeldLine {
            product_id: item.product_id,
            quantity: item.quantity,
            name: item.name,
            unit_price_cents: item.unit_price_cents,
            currency: item.currency,
        })
        .collect();
    Ok(Some(Reservation {
        reservation_id: head.reservation_id,
        status: head.status,
        expires_at: head.expires_at,
        items,
    }))
}

/// A reservation by id.
pub async fn find(db: &DatabaseConnection, id: Uuid) -> Result<Option<Reservation>, DbErr> {
    load(db, id).await
}

/// Locks the live rows of `ids` in id order.
async fn lock_products(txn: &DatabaseTransaction, ids: &[Uuid]) -> Result<Vec<Product>, DbErr> {
    product::Entity::find()
        .filter(product::Column::ProductId.is_in(ids.iter().copied()))
        .order_by_asc(product::Column::ProductId)
        .lock_exclusive()
        .all(txn)
        .await
}

/// Adds `delta[i]` to the stock of `ids[i]` (rows already locked), bumping versions.
async fn move_stock(
    txn: &DatabaseTransaction,
    ids: &[Uuid],
    deltas: &[i32],
) -> Result<Moved, DbErr> {
    let rows = txn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE products p
                SET stock = p.stock + d.delta, version = p.version + 1, updated_at = now()
               FROM UNNEST($1::uuid[], $2::int4[]) AS d(product_id, delta)
              WHERE p.product_id = d.product_id
             RETURNING p.*",
            [ids.to_vec().into(), deltas.to_vec().into()],
        ))
        .await?;
    let products: Vec<Product> = rows
        .iter()
        .map(|row| <Product as sea_orm::FromQueryResult>::from_query_result(row, ""))
        .collect::<Result<_, _>>()?;
    let availability_changed = products.iter().any(|p| {
        let delta = ids
            .iter()
            .position(|id| *id == p.product_id)
            .map_or(0, |at| deltas[at]);
        (p.stock - delta > 0) != (p.stock > 0)
    });
    Ok(Moved {
        products,
        availability_changed,
    })
}

/// What [`take_one`] did.
enum Taken {
    /// The reservation is new and holds the units.
    Held(Moved),
    /// The product is missing or short, or the reservation already existed
    /// before this statement's snapshot: nothing was written.
    Nothing,
    /// A reservation with this id committed first (a retry racing its
    /// original): nothing was written.
    Known,
}

/// The statement of [`take_one`].
static TAKE_ONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH taken AS (
             UPDATE products
                SET stock = stock - $2, version = version + 1, updated_at = now()
              WHERE product_id = $1 AND deleted_at IS NULL AND stock >= $2
                AND NOT EXISTS (SELECT FROM reservations WHERE reservation_id = $3)
             RETURNING *),
         head AS (
             INSERT INTO reservations (reservation_id, status, created_at, updated_at, expires_at)
             SELECT $3, $4, $5, $5, $6 FROM taken),
         line AS (
             INSERT INTO reservation_items
                    (reservation_id, product_id, quantity, name, unit_price_cents, currency)
             SELECT $3, product_id, $2, name, price_cents, currency FROM taken),
         announced AS (
             {insert} SELECT $7, $8, {event} FROM taken)
         SELECT taken.* FROM (VALUES (1)) AS one LEFT JOIN taken ON true",
        insert = outbox::INSERT,
        event = UPDATED_EVENT_SQL.replace("{frame}", "$9"),
    )
});

/// Takes `quantity` of one live product for reservation `head` if it has
/// that many, writing the reservation, its line and the product's event with
/// it: one statement committed on its own, so the product's row lock lasts a
/// single round trip. Two requests with one reservation id cannot both take:
/// the later insert of the reservation breaks its key, which undoes that
/// whole statement.
async fn take_one(
    db: &DatabaseConnection,
    head: &reservation::Model,
    product_id: Uuid,
    quantity: i32,
) -> Result<Taken, DbErr> {
    let frame = updated_frame(product_id);
    let frame_json = serde_json::to_value(&frame)
        .map_err(|err| DbErr::Custom(format!("event does not serialise: {err}")))?;
    let answered = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            TAKE_ONE.as_str(),
            [
                product_id.into(),
                quantity.into(),
                head.reservation_id.into(),
                head.status.clone().into(),
                head.created_at.into(),
                head.expires_at.into(),
                frame.id.into(),
                frame.event.event_type().into(),
                frame_json.into(),
            ],
        ))
        .await;
    let row = match answered {
        // The only unique keys the statement writes with ids it did not just
        // make are the reservation's and its line's.
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Ok(Taken::Known);
        }
        answered => answered?.ok_or_else(|| {
            DbErr::RecordNotFound("the reservation statement answered no row".into())
        })?,
    };
    if row.try_get::<Option<Uuid>>("", "product_id")?.is_none() {
        return Ok(Taken::Nothing);
    }
    let product = <Product as sea_orm::FromQueryResult>::from_query_result(&row, "")?;
    Ok(Taken::Held(Moved {
        availability_changed: product.stock == 0,
        products: vec![product],
    }))
}

/// A reservation made before: what it held, answered to a retry.
async fn known(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Result<Reserved, ReserveRefused>, DbErr> {
    // A reservation is never deleted, so the row the retry met is there.
    let existing = load(db, id)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("reservation {id} vanished")))?;
    Ok(Ok(retried(existing)))
}

/// The answer to a retry: the reservation as the first request made it.
fn retried(existing: Reservation) -> Reserved {
    Reserved {
        reservation: existing,
        created: false,
        moved: Moved::default(),
    }
}

/// The lines a reservation holds, with the names and prices of `products`.
fn held_lines(products: &[Product], wanted: &BTreeMap<Uuid, (i32, usize)>) -> Vec<HeldLine> {
    products
        .iter()
        .map(|p| HeldLine {
            product_id: p.product_id,
            quantity: wanted[&p.product_id].0,
            name: p.name.clone(),
            unit_price_cents: p.price_cents,
            currency: p.currency.clone(),
        })
        .collect()
}

/// Holds every line under `id`, or nothing: all or nothing under any concurrency,
/// idempotent by `id`.
#[tracing::instrument(skip(db, outbox, lines))]
pub async fn reserve(
    db: &DatabaseConnection,
    outbox: &Outbox,
    id: Uuid,
    lines: &[Line],
    hold_for: Duration,
) -> Result<Result<Reserved, ReserveRefused>, DbErr> {
    // Several lines for one product are one hold; BTreeMap keeps id order.
    let mut wanted: BTreeMap<Uuid, (i32, usize)> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        let entry = wanted.entry(line.product_id).or_insert((0, index));
        entry.0 = entry.0.saturating_add(line.quantity.get());
    }
    let ids: Vec<Uuid> = wanted.keys().copied().collect();
    // Postgres keeps microseconds; answer with what a later read will return.
    let now = Utc::now().trunc_subsecs(6);
    let head = reservation::Model {
        reservation_id: id,
        status: "held".into(),
        created_at: now,
        updated_at: now,
        expires_at: now + hold_for,
    };
    if let [product_id] = ids[..] {
        // One product (the common order): one statement, and a single row
        // lock cannot deadlock.
        let (quantity, index) = wanted[&product_id];
        return match take_one(db, &head, product_id, quantity).await? {
            Taken::Held(moved) => {
                outbox.notify();
                let items = held_lines(&moved.products, &wanted);
                Ok(Ok(created(head, items, moved)))
            }
            Taken::Known => known(db, id).await,
            Taken::Nothing => {
                if let Some(existing) = load(db, id).await? {
                    return Ok(Ok(retried(existing)));
                }
                let current = product::Entity::find_by_id(product_id).one(db).await?;
                Ok(Err(match current {
                    Some(p) if p.deleted_at.is_none() => ReserveRefused::Short(vec![Shortage {
                        product_id,
                        stock: p.stock,
                        wanted: quantity,
                        index,
                    }]),
                    _ => ReserveRefused::Unknown { product_id, index },
                }))
            }
        };
    }

    let txn = db.begin().await?;
    let inserted = reservation::Entity::insert(head.clone().into_active_model())
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(reservation::Column::ReservationId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    if inserted == 0 {
        txn.rollback().await?;
        return known(db, id).await;
    }
    let products = lock_products(&txn, &ids).await?;
    let mut short = Vec::new();
    for (&product_id, &(quantity, index)) in &wanted {
        match products.iter().find(|p| p.product_id == product_id) {
            Some(p) if p.deleted_at.is_none() => {
                if p.stock < quantity {
                    short.push(Shortage {
                        product_id,
                        stock: p.stock,
                        wanted: quantity,
                        index,
                    });
                }
            }
            _ => return Ok(Err(ReserveRefused::Unknown { product_id, index })),
        }
    }
    if !short.is_empty() {
        return Ok(Err(ReserveRefused::Short(short)));
    }
    let deltas: Vec<i32> = wanted.values().map(|(q, _)| -q).collect();
    let moved = move_stock(&txn, &ids, &deltas).await?;
    let items = held_lines(&products, &wanted);
    reservation_item::Entity::insert_many(items.iter().map(|line| reservation_item::ActiveModel {
        reservation_id: Set(id),
        product_id: Set(line.product_id),
        quantity: Set(line.quantity),
        name: Set(line.name.clone()),
        unit_price_cents: Set(line.unit_price_cents),
        currency: Set(line.currency.clone()),
    }))
    .exec_without_returning(&txn)
    .await?;
    let events: Vec<Envelope> = moved.products.iter().map(updated_event).collect();
    outbox.enqueue(&txn, &events).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(Ok(created(head, items, moved)))
}

/// The answer to a reservation this request made.
fn created(head: reservation::Model, items: Vec<HeldLine>, moved: Moved) -> Reserved {
    Reserved {
        reservation: Reservation {
            reservation_id: head.reservation_id,
            status: head.status,
            expires_at: head.expires_at,
            items,
        },
        created: true,
        moved,
    }
}

/// Marks a held reservation confirmed (the order exists). Confirming twice is
/// fine; a released one is refused: its stock is gone back.
#[tracing::instrument(skip(db))]
pub async fn confirm(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Result<(), ConfirmRefused>, DbErr> {
    let txn = db.begin().await?;
    let Some(head) = reservation::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(Err(ConfirmRefused::NotFound));
    };
    match head.status.as_str() {
        "confirmed" => Ok(Ok(())),
        "held" => {
            reservation::Entity::update_many()
                .col_expr(reservation::Column::Status, "confirmed".into())
                .col_expr(reservation::Column::UpdatedAt, Utc::now().into())
                .filter(reservation::Column::ReservationId.eq(id))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            Ok(Ok(()))
        }
        _ => Ok(Err(ConfirmRefused::Released)),
    }
}

/// Confirms many held reservations at once; returns those that could not be
/// confirmed because they were released meanwhile (lapsed or cancelled).
#[tracing::instrument(skip_all, fields(count = ids.len()))]
pub async fn confirm_many(db: &DatabaseConnection, ids: &[Uuid]) -> Result<Vec<Uuid>, DbErr> {
    let txn = db.begin().await?;
    // The partial index of held reservations keeps the entries of confirmed
    // ones until vacuum; a bitmap scan of it (which the planner likes for
    // `status = 'held'`) would read them all. Each id is a primary-key lookup.
    txn.execute_unprepared("SET LOCAL enable_bitmapscan = off")
        .await?;
    let confirmed = txn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE reservations SET status = 'confirmed', updated_at = now()
              WHERE reservation_id = ANY($1) AND status = 'held'
             RETURNING reservation_id",
            [ids.to_vec().into()],
        ))
        .await?;
    let mut not_confirmed = Vec::new();
    if confirmed.len() < ids.len() {
        // Confirmed earlier is fine; the rest were released meanwhile.
        let rows = txn
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT wanted.id AS reservation_id FROM unnest($1::uuid[]) AS wanted(id)
                  WHERE NOT EXISTS (SELECT 1 FROM reservations r
                                     WHERE r.reservation_id = wanted.id AND r.status = 'confirmed')",
                [ids.to_vec().into()],
            ))
            .await?;
        for row in rows {
            not_confirmed.push(row.try_get::<Uuid>("", "reservation_id")?);
        }
    }
    txn.commit().await?;
    Ok(not_confirmed)
}

/// Gives a reservation's units back to stock; releasing twice is fine.
/// `None` when there is no such reservation.
#[tracing::instrument(skip(db, outbox))]
pub async fn release(
    db: &DatabaseConnection,
    outbox: &Outbox,
    id: Uuid,
) -> Result<Option<Moved>, DbErr> {
    let txn = db.begin().await?;
    let Some(head) = reservation::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(None);
    };
    if head.status == "released" {
        return Ok(Some(Moved::default()));
    }
    let moved = release_locked(&txn, outbox, id).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(Some(moved))
}

/// Gives part of a reservation back (one order of a bulk order cancelled),
/// once per `release_id` however often it is retried.
#[tracing::instrument(skip(db, outbox, lines))]
pub async fn release_part(
    db: &DatabaseConnection,
    outbox: &Outbox,
    id: Uuid,
    release_id: Uuid,
    lines: &[Line],
) -> Result<Result<Moved, ReleaseRefused>, DbErr> {
    let txn = db.begin().await?;
    let Some(head) = reservation::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(Err(ReleaseRefused::NotFound));
    };
    if head.status == "released" {
        return Ok(Ok(Moved::default()));
    }
    let first_time = txn
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO reservation_releases (reservation_id, release_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            [id.into(), release_id.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if !first_time {
        return Ok(Ok(Moved::default()));
    }
    let mut wanted: BTreeMap<Uuid, i32> = BTreeMap::new();
    for line in lines {
        *wanted.entry(line.product_id).or_insert(0) += line.quantity.get();
    }
    let held = reservation_item::Entity::find()
        .filter(reservation_item::Column::ReservationId.eq(id))
        .all(&txn)
        .await?;
    for (product_id, quantity) in &wanted {
        let holds = held
            .iter()
            .find(|item| item.product_id == *product_id)
            .map_or(0, |item| item.quantity);
        if holds < *quantity {
            return Ok(Err(ReleaseRefused::MoreThanHeld {
                product_id: *product_id,
                holds,
                wanted: *quantity,
            }));
        }
    }
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE reservation_items i SET quantity = i.quantity - d.quantity
           FROM UNNEST($2::uuid[], $3::int4[]) AS d(product_id, quantity)
          WHERE i.reservation_id = $1 AND i.product_id = d.product_id",
        [
            id.into(),
            wanted.keys().copied().collect::<Vec<_>>().into(),
            wanted.values().copied().collect::<Vec<_>>().into(),
        ],
    ))
    .await?;
    reservation_item::Entity::delete_many()
        .filter(reservation_item::Column::ReservationId.eq(id))
        .filter(reservation_item::Column::Quantity.lte(0))
        .exec(&txn)
        .await?;
    let ids: Vec<Uuid> = wanted.keys().copied().collect();
    lock_products(&txn, &ids).await?;
    let moved = move_stock(&txn, &ids, &wanted.values().copied().collect::<Vec<_>>()).await?;
    let events: Vec<Envelope> = moved.products.iter().map(updated_event).collect();
    outbox.enqueue(&txn, &events).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(Ok(moved))
}

async fn release_locked(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    id: Uuid,
) -> Result<Moved, DbErr> {
    let items = reservation_item::Entity::find()
        .filter(reservation_item::Column::ReservationId.eq(id))
        .order_by_asc(reservation_item::Column::ProductId)
        .all(txn)
        .await?;
    let ids: Vec<Uuid> = items.iter().map(|i| i.product_id).collect();
    let deltas: Vec<i32> = items.iter().map(|i| i.quantity).collect();
    lock_products(txn, &ids).await?;
    let moved = move_stock(txn, &ids, &deltas).await?;
    reservation::Entity::update_many()
        .col_expr(reservation::Column::Status, "released".into())
        .col_expr(reservation::Column::UpdatedAt, Utc::now().into())
        .filter(reservation::Column::ReservationId.eq(id))
        .exec(txn)
        .await?;
    let events: Vec<Envelope> = moved.products.iter().map(updated_event).collect();
    outbox.enqueue(txn, &events).await?;
    Ok(moved)
}

/// Advisory lock key held while settling lapsed holds.
pub const EXPIRY_LOCK: i64 = 0x5348_4f50_5245_5345; // "SHOPRESE"

/// Most lapsed holds settled in one pass.
pub const LAPSED_BATCH: u64 = 200;

/// Held reservations past their time, oldest first.
pub async fn lapsed(db: &DatabaseConnection) -> Result<Vec<Uuid>, DbErr> {
    reservation::Entity::find()
        .select_only()
        .column(reservation::Column::ReservationId)
        .filter(reservation::Column::Status.eq("held"))
        .filter(reservation::Column::ExpiresAt.lte(Utc::now()))
        .order_by_asc(reservation::Column::ExpiresAt)
        .limit(LAPSED_BATCH)
        .into_tuple()
        .all(db)
        .await
}

/// Settles lapsed holds as the orders service decided, on one replica at a
/// time: `confirm` ones are used by orders and stay, `release` ones go back
/// to stock. `None` when another replica is at it.
pub async fn settle_lapsed(
    db: &DatabaseConnection,
    outbox: &Outbox,
    confirm: &[Uuid],
    release: &[Uuid],
) -> Result<Option<Moved>, DbErr> {
    let (confirm, release) = (confirm.to_vec(), release.to_vec());
    let settled = platform::jobs::run_exclusive(db, EXPIRY_LOCK, |txn| async move {
        if !confirm.is_empty() {
            txn.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE reservations SET status = 'confirmed', updated_at = now()
                  WHERE reservation_id = ANY($1) AND status = 'held'",
                [confirm.clone().into()],
            ))
            .await?;
        }
        // Still held: one released meanwhile (by its order's failure) is done.
        let still_held: Vec<Uuid> = reservation::Entity::find()
            .select_only()
            .column(reservation::Column::ReservationId)
            .filter(reservation::Column::ReservationId.is_in(release.clone()))
            .filter(reservation::Column::Status.eq("held"))
            .order_by_asc(reservation::Column::ReservationId)
            .lock_exclusive()
            .into_tuple()
            .all(&txn)
            .await?;
        let mut moved = Moved::default();
        for id in &still_held {
            moved.merge(release_locked(&txn, outbox, *id).await?);
        }
        if !confirm.is_empty() {
            tracing::warn!(
                count = confirm.len(),
                "confirmed lapsed holds that orders use (their confirmations had not arrived)"
            );
            metrics::counter!("products_reservations_confirmed_late_total")
                .increment(confirm.len() as u64);
        }
        if !still_held.is_empty() {
            tracing::info!(
                count = still_held.len(),
                "released lapsed stock reservations"
            );
            metrics::counter!("products_reservations_expired_total")
                .increment(still_held.len() as u64);
        }
        Ok((moved, txn))
    })
    .await?;
    if settled.as_ref().is_some_and(|m| !m.products.is_empty()) {
        outbox.notify();
    }
    Ok(settled)
}
