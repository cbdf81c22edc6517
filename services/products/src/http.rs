//! The products API: each handler extracts, calls one use case
//! ([`crate::catalogue`] for changes, [`crate::listing`] for lists, searches
//! and bulk reads, the cache and store for a single read), and shapes the
//! answer.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::Admin;
use platform::bulk::parse_ids;
use platform::cache::Cached;
use platform::extract::{BulkJson, Json, Path, Query, json_text};
use platform::pagination::Page;
use platform::versioning;
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::domain;
use crate::entity::product::Model;
use crate::store;
use crate::{catalogue, listing};

/// A product as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Product {
    /// The product's id.
    pub product_id: Uuid,
    /// Stock-keeping unit.
    pub sku: String,
    /// Shown in lists; searched first.
    pub name: String,
    /// Free text, searched after the name and tags.
    pub description: String,
    /// Price in minor units of `currency`.
    pub price_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Units available.
    pub stock: i32,
    /// Lower-cased; `GET /products?category=` filters on it.
    pub category: String,
    /// Lower-cased and distinct; `GET /products?tags=` filters on them.
    pub tags: Vec<String>,
    /// Free-form attributes.
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// The mean of its reviews' stars, rounded to two decimals; `null`
    /// without reviews. Follows review changes within about a second.
    pub rating_average: Option<f64>,
    /// How many reviews the rating counts.
    pub rating_count: i32,
    /// Optimistic-locking version; also the ETag. Every change bumps it:
    /// stock moves and rating changes too.
    pub version: i32,
    /// When it was added to the catalogue.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Model> for Product {
    fn from(row: Model) -> Self {
        Self {
            product_id: row.product_id,
            sku: row.sku,
            name: row.name,
            description: row.description,
            price_cents: row.price_cents,
            currency: row.currency,
            stock: row.stock,
            category: row.category,
            tags: row.tags,
            attributes: row.attributes,
            rating_average: domain::rating_average(row.rating_sum, row.rating_count)
                .map(|mean| (mean * 100.0).round() / 100.0),
            rating_count: row.rating_count,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// One item of `POST /products`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProductBody {
    /// Unique SKU: 1 to 64 letters, digits, `-`, `_`, `.`.
    pub sku: String,
    /// 1 to 200 characters.
    pub name: String,
    /// Up to 5000 characters.
    pub description: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Units in stock.
    pub stock: i64,
    /// 1 to 100 characters; stored lower-cased.
    pub category: String,
    /// Up to 20, each 1 to 50 characters; stored lower-cased, repeats folded.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form attributes (a JSON object).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
}

/// The body of `PATCH /products/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    /// The version being changed (or send `If-Match`).
    pub version: Option<i64>,
    /// New SKU.
    pub sku: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New price.
    pub price_cents: Option<i64>,
    /// New currency.
    pub currency: Option<String>,
    /// New stock level.
    pub stock: Option<i64>,
    /// New category.
    pub category: Option<String>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// New attributes.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
}

/// The query of `GET /products`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Ids for a bulk read, comma-separated (1 to 100); not combinable with filters.
    #[param(value_type = Option<Vec<Uuid>>, style = Form, explode = false, min_items = 1, max_items = 100)]
    pub ids: Option<String>,
    /// Full-text search (web-search syntax: `"phrase"`, `-exclude`, `or`), typo-tolerant.
    pub q: Option<String>,
    /// Only products in this category (any case).
    pub category: Option<String>,
    /// Comma-separated tags; a product must have all of them.
    pub tags: Option<String>,
    /// Lowest price in minor units.
    pub min_price: Option<i64>,
    /// Highest price in minor units.
    pub max_price: Option<i64>,
    /// `true` for products in stock, `false` for sold out.
    pub in_stock: Option<bool>,
    /// Lowest mean rating, 0 to 5 (compared with the unrounded mean; a
    /// product without reviews has none and is left out by any `min_rating` above 0).
    #[param(minimum = 0, maximum = 5)]
    pub min_rating: Option<f64>,
    /// Comma list of `relevance` (needs `q`), `price`, `created_at`, `name`,
    /// `rating` (the mean, 0 without reviews); `-` for descending. Default:
    /// `-relevance` with `q`, else `-created_at`.
    pub sort: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The JSON the cache keeps for a product.
pub fn cache_record(model: &Model) -> (Uuid, i64, String) {
    let json = serde_json::to_string(&Product::from(model.clone())).unwrap_or_default();
    (model.product_id, i64::from(model.version), json)
}

fn with_etag(status: StatusCode, version: i64, json: String) -> Response {
    let mut response = (status, json).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(tag) = HeaderValue::from_str(&versioning::etag(version)) {
        headers.insert(header::ETAG, tag);
    }
    response
}

/// Create products (bulk, all or nothing).
#[utoipa::path(
    post, path = "/products", tag = "products",
    request_body = Vec<NewProductBody>,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Every product was created", body = Vec<Product>),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "Not an admin", body = platform::error::Problem),
        (status = 409, description = "A SKU is taken; `errors` names each item", body = platform::error::Problem),
        (status = 422, description = "Invalid items; `errors` names each", body = platform::error::Problem),
    )
)]
pub async fn create_products(
    State(state): State<AppState>,
    _: Admin,
    BulkJson(items): BulkJson<NewProductBody>,
) -> ApiResult<(StatusCode, Json<Vec<Product>>)> {
    let created = catalogue::create(&state, &items).await?;
    Ok((
        StatusCode::CREATED,
        Json(created.into_iter().map(Product::from).collect()),
    ))
}

/// List and search products, or read several by `ids`.
#[utoipa::path(
    get, path = "/products", tag = "products",
    params(ProductQuery),
    responses(
        (status = 200, description = "A page (`{data, next_cursor}`), or with `ids` `{data, missing}`", body = Page<Product>),
        (status = 400, description = "A bad filter, sort, limit or cursor", body = platform::error::Problem),
    )
)]
pub async fn list_products(
    State(state): State<AppState>,
    Query(query): Query<ProductQuery>,
) -> ApiResult<Response> {
    if let Some(ids) = &query.ids {
        if query.has_list_parameters() {
            return Err(ApiError::BadRequest(
                "`ids` reads by id and cannot be combined with filters or paging".into(),
            ));
        }
        let ids = parse_ids(ids)?;
        return Ok(Json(listing::read_many(&state, &ids).await?).into_response());
    }
    let json = listing::list(
        &state,
        query.filter()?,
        query.limit,
        query.cursor.as_deref(),
        query.sort.as_deref(),
    )
    .await?;
    Ok(json_text(json))
}

/// Read one product; `If-None-Match` with its ETag answers 304.
#[utoipa::path(
    get, path = "/products/{id}", tag = "products",
    params(
        ("id" = Uuid, Path, description = "Product id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier read"),
    ),
    responses(
        (status = 200, description = "The product, with `ETag: \"<version>\"`", body = Product),
        (status = 304, description = "Not modified since that ETag"),
        (status = 404, description = "No such product (or deleted)", body = platform::error::Problem),
    )
)]
pub async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (version, json) = match state.cache.get(id).await {
        Some(Cached::Present(version, json)) => (version, json),
        Some(Cached::Gone) => return Err(not_found(id)),
        None => {
            let row = store::find_many(&state.db, &[id])
                .await?
                .pop()
                .ok_or_else(|| not_found(id))?;
            let record = cache_record(&row);
            state.cache.put_many(std::slice::from_ref(&record)).await;
            (record.1, record.2)
        }
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| versioning::none_match_hits(tags, version));
    if not_modified {
        return Ok(with_etag(StatusCode::NOT_MODIFIED, version, String::new()));
    }
    Ok(with_etag(StatusCode::OK, version, json))
}

pub(crate) fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no product with id {id}"))
}

/// Change a product, if it is still at the version the caller read.
#[utoipa::path(
    patch, path = "/products/{id}", tag = "products",
    params(
        ("id" = Uuid, Path, description = "Product id"),
        ("If-Match" = Option<String>, Header, description = "The ETag being changed (or `version` in the body)"),
    ),
    request_body = ProductPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The product at its next version", body = Product),
        (status = 403, description = "Not an admin", body = platform::error::Problem),
        (status = 404, description = "No such product", body = platform::error::Problem),
        (status = 412, description = "The version is stale", body = platform::error::Problem),
        (status = 422, description = "Invalid fields", body = platform::error::Problem),
        (status = 428, description = "Neither If-Match nor `version` was given", body = platform::error::Problem),
    )
)]
pub async fn update_product(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(patch): Json<ProductPatch>,
) -> ApiResult<Response> {
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    let expected = versioning::expected_version(if_match, patch.version)?;
    let updated = catalogue::update(&state, id, expected, &patch).await?;
    let record = cache_record(&updated);
    Ok(with_etag(StatusCode::OK, record.1, record.2))
}

/// Delete a product: it leaves lists and searches; orders keep their copy.
#[utoipa::path(
    delete, path = "/products/{id}", tag = "products",
    params(("id" = Uuid, Path, description = "Product id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = platform::error::Problem),
        (status = 404, description = "No such product", body = platform::error::Problem),
    )
)]
pub async fn delete_product(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    catalogue::delete(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
