//! The catalogue's SQL: create, read, search, update with a version check, delete.

use chrono::{SubsecRound, Utc};
use events::{Envelope, Event, ProductUpdated};
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{BoxStream, TryStreamExt};
use platform::outbox::Outbox;
use platform::pagination::{KeyKind, KeyValue, PageRequest, SortField};
use sea_orm::sea_query::{Expr, IntoColumnRef, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter, QuerySelect, Statement,
    TransactionTrait,
};
use uuid::Uuid;

use crate::domain::{NewProduct, ProductChanges};
use crate::entity::product::{Column, Entity as Products, Model};
use crate::search::{MAX_MATCHES, MatchRow, Matched, MatchedBuilder, Matches};

/// The source events carry.
pub const SOURCE: &str = "products";

/// The fields `GET /products` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductSort {
    /// Search rank (needs `q`).
    Relevance,
    /// Price.
    Price,
    /// Creation time.
    CreatedAt,
    /// Name.
    Name,
    /// Mean rating (0 without reviews).
    Rating,
}

impl SortField for ProductSort {
    const ALL: &'static [Self] = &[
        ProductSort::Relevance,
        ProductSort::Price,
        ProductSort::CreatedAt,
        ProductSort::Name,
        ProductSort::Rating,
    ];

    fn name(self) -> &'static str {
        match self {
            ProductSort::Relevance => "relevance",
            ProductSort::Price => "price",
            ProductSort::CreatedAt => "created_at",
            ProductSort::Name => "name",
            ProductSort::Rating => "rating",
        }
    }

    fn kind(self) -> KeyKind {
        match self {
            ProductSort::Relevance => KeyKind::Float,
            ProductSort::Price => KeyKind::Int,
            ProductSort::CreatedAt => KeyKind::Time,
            ProductSort::Name => KeyKind::Text,
            ProductSort::Rating => KeyKind::Float,
        }
    }
}

/// The filters of `GET /products`, already valid.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    /// Search text (web-search syntax).
    pub q: Option<String>,
    /// Category (lower-cased).
    pub category: Option<String>,
    /// Every one of these tags.
    pub tags: Vec<String>,
    /// Lowest price.
    pub min_price: Option<i64>,
    /// Highest price.
    pub max_price: Option<i64>,
    /// In stock (or sold out).
    pub in_stock: Option<bool>,
    /// Lowest mean rating.
    pub min_rating: Option<f64>,
}

/// The stored mean rating (0 without reviews) the rating indexes are built on.
const RATING_AVERAGE: &str = r#""products"."rating_average""#;

/// How `q` is matched: full-text words, or (when they find nothing) trigram
/// word similarity on the name above 0.3, which forgives typos
/// ("iphnoe" ~ "iPhone" is 0.43, "widgte" ~ "Widget" 0.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Matching {
    /// `websearch_to_tsquery` against name, tags, description.
    Words,
    /// `word_similarity` against the name.
    Similar,
}

impl Matching {
    /// The name a cursor remembers the matching by.
    pub fn as_mode(self) -> Option<String> {
        match self {
            Matching::Words => None,
            Matching::Similar => Some("similar".into()),
        }
    }

    /// The matching a cursor remembered.
    pub fn from_mode(mode: Option<&str>) -> Self {
        match mode {
            Some("similar") => Matching::Similar,
            _ => Matching::Words,
        }
    }
}

fn column(column: Column) -> SimpleExpr {
    Expr::col((Products, column).into_column_ref()).into()
}

/// The rank of a product for `q`: for words, by the words that are not
/// excluded (`product_rank_query`). Here and in [`matched_by`] the text is
/// parsed in a scalar subquery, which Postgres runs once per execution.
/// Written in place, the prepared statement's generic plan parsed it again
/// for every row it checked and ranked (2,751 rows for "wireless"), which
/// made a search that misses every cache two and a half times slower.
fn rank_expr(q: Option<&str>, matching: Matching) -> SimpleExpr {
    match (q, matching) {
        (None, _) => Expr::cust("0::float8"),
        (Some(q), Matching::Words) => Expr::cust_with_values(
            "ts_rank(search, (SELECT product_rank_query(websearch_to_tsquery('english', $1))))::float8",
            [q],
        ),
        (Some(q), Matching::Similar) => {
            Expr::cust_with_values("word_similarity($1, name)::float8", [q])
        }
    }
}

impl ProductSort {
    fn expr(self, rank: &SimpleExpr, searching: bool) -> SimpleExpr {
        match self {
            ProductSort::Relevance => rank.clone(),
            ProductSort::Price => column(Column::PriceCents),
            ProductSort::CreatedAt => column(Column::CreatedAt),
            // Searches are also paged in memory (`search`), where names order
            // by bytes; a walk may cross between the two, so both use one order.
            ProductSort::Name if searching => Expr::cust(r#""products"."name" COLLATE "C""#),
            ProductSort::Name => column(Column::Name),
            ProductSort::Rating => Expr::cust(RATING_AVERAGE),
        }
    }

    /// This key's value in `row` of a list without `q`, as a cursor carries it.
    pub fn key_of(self, row: &Model) -> KeyValue {
        match self {
            // Without `q` every product ranks 0 (and `sort=relevance` needs `q`).
            ProductSort::Relevance => KeyValue::Float(0.0),
            ProductSort::Price => KeyValue::Int(row.price_cents),
            ProductSort::CreatedAt => KeyValue::Time(row.created_at),
            ProductSort::Name => KeyValue::Text(row.name.clone()),
            ProductSort::Rating => {
                KeyValue::Float(crate::domain::rating_key(row.rating_sum, row.rating_count))
            }
        }
    }
}

/// The live products `q` matches (all of them without `q`).
fn matched_by(q: Option<&str>, matching: Matching) -> sea_orm::Select<Products> {
    let query = Products::find().filter(Column::DeletedAt.is_null());
    match q {
        None => query,
        Some(q) => query.filter(match matching {
            Matching::Words => Expr::cust_with_values(
                "search @@ (SELECT websearch_to_tsquery('english', $1))",
                [q],
            ),
            Matching::Similar => Expr::cust_with_values("$1 <% name", [q]),
        }),
    }
}

/// One page of `GET /products`: the live products `filter` admits (`q`
/// matched as `matching`), in the page's order, after its cursor, at most
/// its fetch limit; with the rank it orders by.
fn page_of(
    filter: &ProductFilter,
    page: &PageRequest<ProductSort>,
    matching: Matching,
) -> (sea_orm::Select<Products>, SimpleExpr) {
    let q = filter.q.as_deref();
    let rank = rank_expr(q, matching);
    let mut query = matched_by(q, matching);
    if let Some(category) = &filter.category {
        query = query.filter(Column::Category.eq(category.as_str()));
    }
    if !filter.tags.is_empty() {
        query = query.filter(Expr::cust_with_values(
            "tags @> $1",
            [sea_orm::Value::from(filter.tags.clone())],
        ));
    }
    if let Some(min) = filter.min_price {
        query = query.filter(Column::PriceCents.gte(min));
    }
    if let Some(max) = filter.max_price {
        query = query.filter(Column::PriceCents.lte(max));
    }
    match filter.in_stock {
        // `in_stock` is the stored `stock > 0` the partial indexes are built on.
        Some(true) => query = query.filter(Expr::cust("in_stock")),
        Some(false) => query = query.filter(Expr::cust("NOT in_stock")),
        None => {}
    }
    if let Some(min) = filter.min_rating {
        query = query.filter(Expr::cust_with_values(
            format!("{RATING_AVERAGE} >= $1"),
            [min],
        ));
    }
    let searching = q.is_some();
    let query = page.apply(
        query,
        |key| key.expr(&rank, searching),
        column(Column::ProductId),
    );
    (query, rank)
}

/// The query behind one page of `GET /products` without `q`, built but not run.
pub fn list_query(
    filter: &ProductFilter,
    page: &PageRequest<ProductSort>,
) -> sea_orm::Select<Products> {
    page_of(filter, page, Matching::Words).0
}

/// One page of live products matching `filter` (without `q`), in the requested order.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &DatabaseConnection,
    filter: &ProductFilter,
    page: &PageRequest<ProductSort>,
) -> Result<Vec<Model>, DbErr> {
    list_query(filter, page).all(db).await
}

/// `query` reading what a search's filters and sorts need of each product,
/// and no more: a search ranks every product its words match, and Postgres
/// builds each of those rows in full before it sorts them.
fn match_columns(query: sea_orm::Select<Products>, rank: SimpleExpr) -> sea_orm::Select<Products> {
    query
        .select_only()
        .column(Column::ProductId)
        .column_as(rank, "rank")
        .columns([
            Column::PriceCents,
            Column::CreatedAt,
            Column::Name,
            Column::Category,
            Column::Tags,
            Column::RatingSum,
            Column::RatingCount,
        ])
        .column_as(Expr::cust("in_stock"), "in_stock")
}

/// The setting fuzzy matching runs under, scoped to its transaction.
pub const SIMILAR_SETTING: &str = "SET LOCAL pg_trgm.word_similarity_threshold = 0.3";

/// The query behind [`search_page()`], built but not run.
pub fn search_page_query(
    filter: &ProductFilter,
    page: &PageRequest<ProductSort>,
    matching: Matching,
) -> sea_orm::Selector<sea_orm::SelectModel<MatchRow>> {
    let (query, rank) = page_of(filter, page, matching);
    match_columns(query, rank).into_model::<MatchRow>()
}

/// The matches on one page of a search (`filter.q` matched as `matching`),
/// in the requested order: the page a search answers from Postgres, its
/// products' rows read afterwards by id.
#[tracing::instrument(skip(db))]
pub async fn search_page(
    db: &DatabaseConnection,
    filter: &ProductFilter,
    page: &PageRequest<ProductSort>,
    matching: Matching,
) -> Result<Matched, DbErr> {
    run_matching(
        db,
        matching,
        search_page_query(filter, page, matching),
        |rows| {
            rows.try_collect()
                .map(|rows| rows.map(Matched::from_rows))
                .boxed()
        },
    )
    .await
}

/// The query behind [`matches()`], built but not run.
pub fn matches_query(
    q: &str,
    matching: Matching,
) -> sea_orm::Selector<sea_orm::SelectModel<MatchRow>> {
    match_columns(matched_by(Some(q), matching), rank_expr(Some(q), matching))
        .limit(MAX_MATCHES + 1)
        .into_model::<MatchRow>()
}

/// Every live product `q` matches, ranked, with what filters and sorts read;
/// [`Matches::TooMany`] when more than [`MAX_MATCHES`] do.
#[tracing::instrument(skip(db))]
pub async fn matches(
    db: &DatabaseConnection,
    q: &str,
    matching: Matching,
) -> Result<Matches, DbErr> {
    run_matching(db, matching, matches_query(q, matching), |rows| {
        collect_matches(rows).boxed()
    })
    .await
}

/// Stores streamed matches as they come, up to [`MAX_MATCHES`].
async fn collect_matches(
    mut rows: BoxStream<'_, Result<MatchRow, DbErr>>,
) -> Result<Matches, DbErr> {
    let mut matched = MatchedBuilder::default();
    while let Some(row) = rows.try_next().await? {
        if matched.len() as u64 == MAX_MATCHES {
            return Ok(Matches::TooMany);
        }
        matched.push(row);
    }
    Ok(Matches::All(matched.finish()))
}

/// Runs a search query under the setting its matching needs, handing its
/// rows to `take` as Postgres sends them.
async fn run_matching<T, R>(
    db: &DatabaseConnection,
    matching: Matching,
    query: sea_orm::Selector<sea_orm::SelectModel<T>>,
    take: impl for<'a> FnOnce(BoxStream<'a, Result<T, DbErr>>) -> BoxFuture<'a, Result<R, DbErr>>,
) -> Result<R, DbErr>
where
    T: FromQueryResult + Send + Sync,
{
    match matching {
        Matching::Words => take(Box::pin(query.stream(db).await?)).await,
        Matching::Similar => {
            // The threshold of `<%` is a setting; scope it to this query.
            let txn = db.begin().await?;
            txn.execute_unprepared(SIMILAR_SETTING).await?;
            let taken = take(Box::pin(query.stream(&txn).await?)).await?;
            txn.commit().await?;
            Ok(taken)
        }
    }
}

/// The live products with these ids (in no particular order).
#[tracing::instrument(skip(db))]
pub async fn find_many(db: &DatabaseConnection, ids: &[Uuid]) -> Result<Vec<Model>, DbErr> {
    Products::find()
        .filter(Column::ProductId.is_in(ids.iter().copied()))
        .filter(Column::DeletedAt.is_null())
        .all(db)
        .await
}

/// The event announcing `model` as it is now.
pub fn updated_event(model: &Model) -> Envelope {
    Envelope::new(
        SOURCE,
        Event::ProductUpdated(ProductUpdated {
            product_id: model.product_id,
            sku: model.sku.clone(),
            name: model.name.clone(),
            price_cents: model.price_cents,
            currency: model.currency.clone(),
            stock: model.stock,
            version: model.version,
            deleted: model.deleted_at.is_some(),
        }),
    )
}

/// [`updated_event`] written by SQL, for a statement that moves stock and
/// announces it at once: the envelope of [`updated_frame`] (bound as a
/// parameter) with its `data` built from the changed row, whose columns the
/// expression names. The reservations test
/// `a_one_product_hold_announces_the_product_as_it_is_after_the_move` pins
/// the two together.
pub const UPDATED_EVENT_SQL: &str = "jsonb_set({frame}::jsonb, '{data}', jsonb_build_object(
        'product_id', product_id, 'sku', sku, 'name', name, 'price_cents', price_cents,
        'currency', currency, 'stock', stock, 'version', version,
        'deleted', deleted_at IS NOT NULL))";

/// The envelope [`UPDATED_EVENT_SQL`] fills in: id, type, time and source.
pub fn updated_frame(product_id: Uuid) -> Envelope {
    Envelope::new(
        SOURCE,
        Event::ProductUpdated(ProductUpdated {
            product_id,
            sku: String::new(),
            name: String::new(),
            price_cents: 0,
            currency: String::new(),
            stock: 0,
            version: 0,
            deleted: false,
        }),
    )
}

/// The unique constraint on SKUs: a write that races another for one breaks it.
pub const SKU_TAKEN: &str = "products_sku_key";

/// The items of a creation whose SKU a live product has, by index, with the SKU.
#[derive(Debug)]
pub struct SkusTaken(pub Vec<(usize, String)>);

/// Creates every product in one transaction with its event, or none. A race
/// for a SKU ends in a violation of [`SKU_TAKEN`].
#[tracing::instrument(skip_all, fields(count = products.len()))]
pub async fn create(
    db: &DatabaseConnection,
    outbox: &Outbox,
    products: Vec<NewProduct>,
) -> Result<Result<Vec<Model>, SkusTaken>, DbErr> {
    let now = Utc::now().trunc_subsecs(6);
    let models: Vec<Model> = products
        .into_iter()
        .map(|p| Model {
            product_id: Uuid::now_v7(),
            sku: p.sku().as_str().to_owned(),
            name: p.name().to_owned(),
            description: p.description().to_owned(),
            price_cents: p.price().cents(),
            currency: p.price().currency().to_string(),
            stock: p.stock(),
            category: p.category().to_owned(),
            tags: p.tags().to_vec(),
            attributes: p.attributes().clone(),
            version: 1,
            rating_count: 0,
            rating_sum: 0,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
        .collect();
    let skus: Vec<String> = models.iter().map(|m| m.sku.clone()).collect();
    let txn = db.begin().await?;
    let taken: Vec<String> = Products::find()
        .select_only()
        .column(Column::Sku)
        .filter(Column::Sku.is_in(skus.iter().cloned()))
        .filter(Column::DeletedAt.is_null())
        .into_tuple()
        .all(&txn)
        .await?;
    if !taken.is_empty() {
        let taken = skus
            .into_iter()
            .enumerate()
            .filter(|(_, sku)| taken.contains(sku))
            .collect();
        return Ok(Err(SkusTaken(taken)));
    }
    let rows = models
        .iter()
        .cloned()
        .map(IntoActiveModel::into_active_model);
    Products::insert_many(rows)
        .exec_without_returning(&txn)
        .await?;
    let events: Vec<Envelope> = models.iter().map(updated_event).collect();
    outbox.enqueue(&txn, &events).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(Ok(models))
}

/// Why an update did not happen.
#[derive(Debug)]
pub enum UpdateRefused {
    /// No live product has this id.
    NotFound,
    /// The product is at another version now.
    Stale {
        /// Its current version.
        current: i32,
    },
}

/// Applies `changes` if the product is still at `expected` version. A SKU
/// taken meanwhile ends in a violation of [`SKU_TAKEN`].
#[tracing::instrument(skip(db, outbox))]
pub async fn update(
    db: &DatabaseConnection,
    outbox: &Outbox,
    id: Uuid,
    expected: i32,
    changes: ProductChanges,
) -> Result<Result<Model, UpdateRefused>, DbErr> {
    let txn = db.begin().await?;
    let Some(current) = Products::find_by_id(id)
        .filter(Column::DeletedAt.is_null())
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(Err(UpdateRefused::NotFound));
    };
    if current.version != expected {
        return Ok(Err(UpdateRefused::Stale {
            current: current.version,
        }));
    }
    let version = current.version + 1;
    let mut row = current.into_active_model();
    if let Some(sku) = changes.sku {
        row.sku = Set(sku.into_string());
    }
    if let Some(name) = changes.name {
        row.name = Set(name);
    }
    if let Some(description) = changes.description {
        row.description = Set(description);
    }
    if let Some(price) = changes.price_cents {
        row.price_cents = Set(price);
    }
    if let Some(currency) = changes.currency {
        row.currency = Set(currency.to_string());
    }
    if let Some(stock) = changes.stock {
        row.stock = Set(stock);
    }
    if let Some(category) = changes.category {
        row.category = Set(category);
    }
    if let Some(tags) = changes.tags {
        row.tags = Set(tags);
    }
    if let Some(attributes) = changes.attributes {
        row.attributes = Set(attributes);
    }
    row.version = Set(version);
    row.updated_at = Set(Utc::now().trunc_subsecs(6));
    let updated = Products::update(row).exec(&txn).await?;
    outbox.enqueue(&txn, &[updated_event(&updated)]).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(Ok(updated))
}

/// Soft-deletes a live product; `None` when there is none.
#[tracing::instrument(skip(db, outbox))]
pub async fn delete(
    db: &DatabaseConnection,
    outbox: &Outbox,
    id: Uuid,
) -> Result<Option<Model>, DbErr> {
    let txn = db.begin().await?;
    let Some(current) = Products::find_by_id(id)
        .filter(Column::DeletedAt.is_null())
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(None);
    };
    let version = current.version + 1;
    let mut row = current.into_active_model();
    let now = Utc::now().trunc_subsecs(6);
    row.deleted_at = Set(Some(now));
    row.updated_at = Set(now);
    row.version = Set(version);
    let deleted = Products::update(row).exec(&txn).await?;
    outbox.enqueue(&txn, &[updated_event(&deleted)]).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(Some(deleted))
}

/// Locks the product's row (live or deleted) until the transaction ends.
pub async fn lock_product<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT 1 FROM products WHERE product_id = $1 FOR UPDATE",
        [id.into()],
    ))
    .await?;
    Ok(())
}

/// Records the newest state of a review in the ratings tally; false when
/// the tally already held this version or a newer one.
pub async fn tally_review<C: ConnectionTrait>(
    db: &C,
    review: &events::ReviewChanged,
    deleted: bool,
) -> Result<bool, DbErr> {
    Ok(db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO product_reviews (review_id, product_id, rating, version, deleted)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (review_id) DO UPDATE
                SET rating = excluded.rating, version = excluded.version, deleted = excluded.deleted
                WHERE product_reviews.version < excluded.version",
            [
                review.review_id.into(),
                review.product_id.into(),
                review.rating.into(),
                review.version.into(),
                deleted.into(),
            ],
        ))
        .await?
        .rows_affected()
        == 1)
}

/// Recomputes the product's rating from the tally (the row locked by
/// [`lock_product`]); a change bumps its version like any other. Returns
/// the product when its rating changed.
pub async fn recount_rating<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Model>, DbErr> {
    Model::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE products p
            SET rating_count = t.n, rating_sum = t.s, version = p.version + 1, updated_at = now()
           FROM (SELECT count(*)::integer AS n, coalesce(sum(rating), 0)::bigint AS s
                   FROM product_reviews WHERE product_id = $1 AND NOT deleted) t
          WHERE p.product_id = $1 AND (p.rating_count, p.rating_sum) IS DISTINCT FROM (t.n, t.s)
        RETURNING p.*",
        [id.into()],
    ))
    .one(db)
    .await
}

/// Inserts generated products without events (demo data for `shop seed`).
pub async fn insert_seed<C: ConnectionTrait>(db: &C, products: Vec<Model>) -> Result<(), DbErr> {
    Products::insert_many(products.into_iter().map(IntoActiveModel::into_active_model))
        .exec_without_returning(db)
        .await?;
    Ok(())
}
