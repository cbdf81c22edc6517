//! Every SQL statement of the reviews service: the reviews themselves, and
//! the projections of authors, purchases and products kept from events.

use chrono::{DateTime, Utc};
use platform::pagination::{KeyKind, KeyValue, PageRequest, SortField};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Statement,
};
use uuid::Uuid;

use crate::entity::{Column, Entity as Reviews, Model};

/// The unique constraint that allows one review per user and product.
pub const ONE_PER_USER_AND_PRODUCT: &str = "reviews_one_per_user_and_product";

/// The fields review lists sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewSort {
    CreatedAt,
    Rating,
}

impl SortField for ReviewSort {
    const ALL: &'static [Self] = &[ReviewSort::CreatedAt, ReviewSort::Rating];

    fn name(self) -> &'static str {
        match self {
            ReviewSort::CreatedAt => "created_at",
            ReviewSort::Rating => "rating",
        }
    }

    fn kind(self) -> KeyKind {
        match self {
            ReviewSort::CreatedAt => KeyKind::Time,
            ReviewSort::Rating => KeyKind::Int,
        }
    }
}

impl ReviewSort {
    fn column(self) -> Column {
        match self {
            ReviewSort::CreatedAt => Column::CreatedAt,
            ReviewSort::Rating => Column::Rating,
        }
    }

    /// This key's value in `row`, for the cursor.
    pub fn key_of(self, row: &Model) -> KeyValue {
        match self {
            ReviewSort::CreatedAt => KeyValue::Time(row.created_at),
            ReviewSort::Rating => KeyValue::Int(i64::from(row.rating)),
        }
    }
}

/// Which reviews a list holds: one product's or one author's, narrowed by
/// stars and by verified purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewFilter {
    pub product_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub rating: Option<i16>,
    pub verified: Option<bool>,
}

fn column(column: Column) -> SimpleExpr {
    Expr::col((Reviews, column)).into()
}

/// The query of one page of `filter` in the order `page` asks for, built but not run.
pub fn list_query(
    filter: &ReviewFilter,
    page: &PageRequest<ReviewSort>,
) -> sea_orm::Select<Reviews> {
    let mut query = Reviews::find();
    if let Some(product_id) = filter.product_id {
        query = query.filter(Column::ProductId.eq(product_id));
    }
    if let Some(user_id) = filter.user_id {
        query = query.filter(Column::UserId.eq(user_id));
    }
    if let Some(rating) = filter.rating {
        query = query.filter(Column::Rating.eq(rating));
    }
    if let Some(verified) = filter.verified {
        query = query.filter(Column::VerifiedPurchase.eq(verified));
    }
    page.apply(query, |key| column(key.column()), column(Column::ReviewId))
}

/// One page of reviews (one row more than the page, to tell whether another follows).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &ReviewFilter,
    page: &PageRequest<ReviewSort>,
) -> Result<Vec<Model>, DbErr> {
    list_query(filter, page).all(db).await
}

pub async fn find<C: ConnectionTrait>(db: &C, review_id: Uuid) -> Result<Option<Model>, DbErr> {
    Reviews::find_by_id(review_id).one(db).await
}

/// The review, locked until the transaction ends: edits and deletions of
/// one review queue behind each other.
pub async fn find_for_update<C: ConnectionTrait>(
    db: &C,
    review_id: Uuid,
) -> Result<Option<Model>, DbErr> {
    Reviews::find_by_id(review_id)
        .lock_exclusive()
        .one(db)
        .await
}

pub async fn find_many<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<Vec<Model>, DbErr> {
    Reviews::find()
        .filter(Column::ReviewId.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// How many reviews of the product gave each number of stars.
pub async fn stars_of<C: ConnectionTrait>(
    db: &C,
    product_id: Uuid,
) -> Result<Vec<(i16, i64)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Stars {
        rating: i16,
        n: i64,
    }
    let rows = Stars::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT rating, count(*) AS n FROM reviews WHERE product_id = $1 GROUP BY rating",
        [product_id.into()],
    ))
    .all(db)
    .await?;
    Ok(rows.into_iter().map(|row| (row.rating, row.n)).collect())
}

/// Writes a new review; a second one by the same author for the same
/// product breaks [`ONE_PER_USER_AND_PRODUCT`].
pub async fn insert<C: ConnectionTrait>(db: &C, review: Model) -> Result<Model, DbErr> {
    let active: crate::entity::ActiveModel = review.clone().into();
    Reviews::insert(active).exec_without_returning(db).await?;
    Ok(review)
}

/// Replaces the text of a review locked by [`find_for_update`], at its next version.
pub async fn update_text<C: ConnectionTrait>(
    db: &C,
    review: &Model,
    title: &str,
    body: &str,
) -> Result<Model, DbErr> {
    Reviews::update_many()
        .col_expr(Column::Title, Expr::value(title))
        .col_expr(Column::Body, Expr::value(body))
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .col_expr(Column::UpdatedAt, Expr::current_timestamp().into())
        .filter(Column::ReviewId.eq(review.review_id))
        .exec_with_returning(db)
        .await?
        .pop()
        .ok_or_else(|| DbErr::RecordNotFound(format!("review {}", review.review_id)))
}

pub async fn delete<C: ConnectionTrait>(db: &C, review_id: Uuid) -> Result<(), DbErr> {
    Reviews::delete_by_id(review_id).exec(db).await?;
    Ok(())
}

/// An author as the projection knows them.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Author {
    pub name: String,
    pub deleted: bool,
}

/// Serialises, until the transaction ends, everything that decides a
/// user's reviews: writing one, their orders being delivered, their renaming
/// and deletion. Without it a review written while its purchase is delivered
/// could miss its verification (each transaction blind to the other's row).
pub async fn lock_user<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))",
        [user_id.into()],
    ))
    .await?;
    Ok(())
}

/// The author's projected name.
pub async fn author<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<Option<Author>, DbErr> {
    Author::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT name, deleted FROM authors WHERE user_id = $1",
        [user_id.into()],
    ))
    .one(db)
    .await
}

/// Records `name` as of `as_of` unless something newer is known (a later
/// rename, or the user's deletion), and renames the author's reviews.
/// Returns the products whose reviews were renamed.
pub async fn record_author<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    name: &str,
    as_of: DateTime<Utc>,
) -> Result<Vec<Uuid>, DbErr> {
    let taken = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO authors (user_id, name, as_of) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, as_of = excluded.as_of
             WHERE NOT authors.deleted AND authors.as_of < excluded.as_of",
            [user_id.into(), name.into(), as_of.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if !taken {
        return Ok(Vec::new());
    }
    products_of(
        db,
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE reviews SET author_name = $2 WHERE user_id = $1 AND author_name <> $2
             RETURNING product_id",
            [user_id.into(), name.into()],
        ),
    )
    .await
}

async fn products_of<C: ConnectionTrait>(db: &C, statement: Statement) -> Result<Vec<Uuid>, DbErr> {
    db.query_all(statement)
        .await?
        .iter()
        .map(|row| row.try_get::<Uuid>("", "product_id"))
        .collect()
}

/// Marks the user deleted for good (a tombstone no late event overwrites)
/// and deletes their reviews, returning them.
pub async fn forget_author<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    as_of: DateTime<Utc>,
) -> Result<Vec<Model>, DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO authors (user_id, name, as_of, deleted) VALUES ($1, '', $2, true)
         ON CONFLICT (user_id) DO UPDATE SET deleted = true, as_of = excluded.as_of",
        [user_id.into(), as_of.into()],
    ))
    .await?;
    Reviews::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec_with_returning(db)
        .await
}

/// Records the products of a placed order.
pub async fn record_order_lines<C: ConnectionTrait>(
    db: &C,
    order_id: Uuid,
    user_id: Uuid,
    product_ids: &[Uuid],
) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO order_lines (order_id, product_id, user_id)
         SELECT $1, product_id, $2 FROM unnest($3::uuid[]) AS product_id
         ON CONFLICT DO NOTHING",
        [order_id.into(), user_id.into(), product_ids.to_vec().into()],
    ))
    .await?;
    Ok(())
}

/// Records that an order was delivered.
pub async fn record_delivery<C: ConnectionTrait>(
    db: &C,
    order_id: Uuid,
    user_id: Uuid,
) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO delivered_orders (order_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        [order_id.into(), user_id.into()],
    ))
    .await?;
    Ok(())
}

/// Marks verified every review of `user_id` for a product they have a
/// delivered order of; returns those products.
pub async fn verify_purchases<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<Uuid>, DbErr> {
    products_of(
        db,
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE reviews r SET verified_purchase = true
             WHERE r.user_id = $1 AND NOT r.verified_purchase
               AND EXISTS (SELECT 1 FROM order_lines l JOIN delivered_orders d USING (order_id)
                           WHERE l.user_id = r.user_id AND l.product_id = r.product_id)
             RETURNING r.product_id",
            [user_id.into()],
        ),
    )
    .await
}

/// True when `user_id` has a delivered order holding `product_id`.
pub async fn has_bought<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    product_id: Uuid,
) -> Result<bool, DbErr> {
    Ok(db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM order_lines l JOIN delivered_orders d USING (order_id)
             WHERE l.user_id = $1 AND l.product_id = $2 LIMIT 1",
            [user_id.into(), product_id.into()],
        ))
        .await?
        .is_some())
}

/// Records a product heard of, or its deletion (which is final). Most
/// events of a product change neither, and cost one indexed read, no write.
pub async fn record_product<C: ConnectionTrait>(
    db: &C,
    product_id: Uuid,
    version: i32,
    deleted: bool,
) -> Result<(), DbErr> {
    let known = product_deleted(db, product_id).await?;
    if known == Some(true) || (known == Some(false) && !deleted) {
        return Ok(());
    }
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO products (product_id, version, deleted) VALUES ($1, $2, $3)
         ON CONFLICT (product_id) DO UPDATE SET version = excluded.version, deleted = true
         WHERE excluded.deleted AND NOT products.deleted",
        [product_id.into(), version.into(), deleted.into()],
    ))
    .await?;
    Ok(())
}

/// What the projection knows of a product: `Some(true)` deleted,
/// `Some(false)` live, `None` not heard of yet.
pub async fn product_deleted<C: ConnectionTrait>(
    db: &C,
    product_id: Uuid,
) -> Result<Option<bool>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT deleted FROM products WHERE product_id = $1",
            [product_id.into()],
        ))
        .await?;
    row.map(|row| row.try_get::<bool>("", "deleted"))
        .transpose()
}
