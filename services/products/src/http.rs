//! The products API: each handler extracts, applies the rules, calls the
//! store (through the cache for reads), and shapes the answer.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::Admin;
use platform::bulk::{Batch, parse_ids};
use platform::cache::Cached;
use platform::extract::{BulkJson, Json, Path, Query};
use platform::pagination::{Direction, KeyValue, Page, PageRequest};
use platform::{ApiError, ApiResult, FieldError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::domain::{self, Errors, NewProduct, ProductChanges};
use crate::entity::product::Model;
use crate::search::{self, Matches};
use crate::store::{self, Matching, ProductFilter, ProductSort, UpdateRefused};

/// A product as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Product {
    /// The product's id.
    pub product_id: Uuid,
    /// Stock-keeping unit.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price in minor units of `currency`.
    pub price_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Units available.
    pub stock: i32,
    /// Category.
    pub category: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Free-form attributes.
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// Optimistic-locking version; also the ETag.
    pub version: i32,
    /// Created.
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
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Units in stock.
    pub stock: i64,
    /// Category.
    pub category: String,
    /// Tags.
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
    /// Comma-separated ids for a bulk read (up to 100); not combinable with filters.
    pub ids: Option<String>,
    /// Full-text search (web-search syntax: `"phrase"`, `-exclude`, `or`), typo-tolerant.
    pub q: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Comma-separated tags; a product must have all of them.
    pub tags: Option<String>,
    /// Lowest price in minor units.
    pub min_price: Option<i64>,
    /// Highest price in minor units.
    pub max_price: Option<i64>,
    /// `true` for products in stock, `false` for sold out.
    pub in_stock: Option<bool>,
    /// Comma list of `relevance` (needs `q`), `price`, `created_at`, `name`; `-` for
    /// descending. Default: `-relevance` with `q`, else `-created_at`.
    pub sort: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ProductQuery {
    fn has_list_parameters(&self) -> bool {
        self.q.is_some()
            || self.category.is_some()
            || self.tags.is_some()
            || self.min_price.is_some()
            || self.max_price.is_some()
            || self.in_stock.is_some()
            || self.sort.is_some()
            || self.limit.is_some()
            || self.cursor.is_some()
    }

    fn filter(&self) -> ApiResult<ProductFilter> {
        let q = self
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        if q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(ApiError::BadRequest(
                "`q` must be at most 200 characters".into(),
            ));
        }
        let tags = match self.tags.as_deref() {
            None => Vec::new(),
            Some(raw) => {
                let raw: Vec<String> = raw
                    .split(',')
                    .map(str::to_owned)
                    .filter(|t| !t.trim().is_empty())
                    .collect();
                domain::parse_tags(&raw)
                    .map_err(|m| ApiError::BadRequest(format!("`tags`: {m}")))?
            }
        };
        for (name, value) in [("min_price", self.min_price), ("max_price", self.max_price)] {
            if value.is_some_and(|v| v < 0) {
                return Err(ApiError::BadRequest(format!(
                    "`{name}` must not be negative"
                )));
            }
        }
        if let (Some(min), Some(max)) = (self.min_price, self.max_price)
            && min > max
        {
            return Err(ApiError::BadRequest(
                "`min_price` is above `max_price`".into(),
            ));
        }
        Ok(ProductFilter {
            q,
            category: self.category.as_deref().map(|c| c.trim().to_lowercase()),
            tags,
            min_price: self.min_price,
            max_price: self.max_price,
            in_stock: self.in_stock,
        })
    }
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
    if let Ok(tag) = HeaderValue::from_str(&domain::etag(version)) {
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
    let mut products = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let mut e = Errors::default();
        let parsed = (
            e.check("sku", domain::parse_sku(&item.sku)),
            e.check("name", domain::parse_name(&item.name)),
            e.check("description", domain::parse_description(&item.description)),
            e.check("price_cents", domain::parse_price(item.price_cents)),
            e.check("currency", domain::parse_currency(&item.currency)),
            e.check("stock", domain::parse_stock(item.stock)),
            e.check("category", domain::parse_category(&item.category)),
            e.check("tags", domain::parse_tags(&item.tags)),
            e.check(
                "attributes",
                domain::parse_attributes(
                    item.attributes
                        .as_ref()
                        .unwrap_or(&Value::Object(Default::default())),
                ),
            ),
        );
        match parsed {
            (
                Some(sku),
                Some(name),
                Some(description),
                Some(price_cents),
                Some(currency),
                Some(stock),
                Some(category),
                Some(tags),
                Some(attributes),
            ) => products.push(NewProduct {
                sku,
                name,
                description,
                price_cents,
                currency,
                stock,
                category,
                tags,
                attributes,
            }),
            _ => errors.extend(e.0.into_iter().map(|err| err.at(index))),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut first_seen = std::collections::HashMap::new();
    let duplicates: Vec<FieldError> = products
        .iter()
        .enumerate()
        .filter_map(|(index, p)| match first_seen.get(p.sku.as_str()) {
            Some(first) => Some(FieldError::new("sku", format!("repeats item {first}")).at(index)),
            None => {
                first_seen.insert(p.sku.as_str(), index);
                None
            }
        })
        .collect();
    if !duplicates.is_empty() {
        return Err(ApiError::Conflict {
            detail: "the same SKU appears more than once; nothing was created".into(),
            errors: duplicates,
            allowed: None,
        });
    }
    let created = store::create(&state.db, &state.outbox, products).await?;
    state.lists.invalidate().await;
    state
        .cache
        .put_many(&created.iter().map(cache_record).collect::<Vec<_>>())
        .await;
    Ok((
        StatusCode::CREATED,
        Json(created.into_iter().map(Product::from).collect()),
    ))
}

const DEFAULT_SORT: &[(ProductSort, Direction)] = &[(ProductSort::CreatedAt, Direction::Desc)];
const SEARCH_SORT: &[(ProductSort, Direction)] = &[(ProductSort::Relevance, Direction::Desc)];

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
        return Ok(Json(read_many(&state, &ids).await?).into_response());
    }
    let filter = query.filter()?;
    let default_sort = if filter.q.is_some() {
        SEARCH_SORT
    } else {
        DEFAULT_SORT
    };
    let mut page = PageRequest::parse(
        query.limit,
        query.cursor.as_deref(),
        query.sort.as_deref(),
        default_sort,
    )?;
    if filter.q.is_none()
        && page
            .sort
            .keys
            .iter()
            .any(|(k, _)| *k == ProductSort::Relevance)
    {
        return Err(ApiError::BadRequest(
            "sorting by `relevance` needs `q`".into(),
        ));
    }
    // The same question within a few seconds gets the same answer.
    let cache_key = list_cache_key(&filter, &page, query.cursor.as_deref());
    let lookup = state.lists.get(&cache_key).await;
    if let Some(json) = &lookup.hit {
        return Ok(json_response(json.clone()));
    }
    let searched = match (filter.q.as_deref(), lookup.generation()) {
        (Some(q), Some(generation)) => {
            search_in_memory(&state, generation, q, &filter, &mut page).await?
        }
        _ => None,
    };
    let result = match searched {
        Some(result) => result,
        None => list_in_postgres(&state, &filter, &mut page).await?,
    };
    let json = serde_json::to_string(&result).map_err(|err| ApiError::Internal(err.into()))?;
    state.lists.put(&lookup, &cache_key, &json).await;
    Ok(json_response(json))
}

/// A page computed by Postgres: filters, order and limit in one query.
async fn list_in_postgres(
    state: &AppState,
    filter: &ProductFilter,
    page: &mut PageRequest<ProductSort>,
) -> ApiResult<Page<Product>> {
    let mut matching = Matching::from_mode(page.mode.as_deref());
    let mut rows = store::list(&state.db, filter, page, matching).await?;
    // Words that find nothing on a first page may be a typo: try the names.
    if rows.is_empty() && page.after.is_none() && filter.q.is_some() && matching == Matching::Words
    {
        matching = Matching::Similar;
        rows = store::list(&state.db, filter, page, matching).await?;
    }
    page.mode = matching.as_mode();
    let result = page.finish(rows, |row| {
        let mut keys: Vec<KeyValue> = page.sort.keys.iter().map(|(k, _)| k.key_of(row)).collect();
        keys.push(KeyValue::Uuid(row.product.product_id));
        keys
    });
    Ok(result.map(|row| Product::from(row.product)))
}

/// A search page from the ranked matches of `q` kept in memory (see
/// [`crate::search`]), the same answer [`list_in_postgres`] gives; `None` when
/// `q` matches too many products to keep.
async fn search_in_memory(
    state: &AppState,
    generation: &str,
    q: &str,
    filter: &ProductFilter,
    page: &mut PageRequest<ProductSort>,
) -> ApiResult<Option<Page<Product>>> {
    let matches = |matching| {
        state
            .matches
            .get_or_load(generation, matching, q, async move {
                store::matches(&state.db, q, matching).await
            })
    };
    let mut matching = Matching::from_mode(page.mode.as_deref());
    let words = matches(matching).await?;
    let Matches::All(found) = words.as_ref() else {
        return Ok(None);
    };
    let mut all = found;
    let mut chosen = search::page(all, filter, page);
    // Words that find nothing on a first page may be a typo: try the names.
    let typos;
    if chosen.is_empty() && matching == Matching::Words && page.after.is_none() {
        matching = Matching::Similar;
        typos = matches(matching).await?;
        let Matches::All(similar) = typos.as_ref() else {
            return Ok(None);
        };
        all = similar;
        chosen = search::page(all, filter, page);
    }
    page.mode = matching.as_mode();
    let chosen = page.finish(chosen, |m| all.cursor_keys(m, &page.sort.keys));
    let ids: Vec<Uuid> = chosen.data.iter().map(|m| m.product_id).collect();
    let mut rows: HashMap<Uuid, Model> = store::find_many(&state.db, &ids)
        .await?
        .into_iter()
        .map(|row| (row.product_id, row))
        .collect();
    Ok(Some(Page {
        // A product deleted since the matches were read is left out.
        data: ids
            .iter()
            .filter_map(|id| rows.remove(id))
            .map(Product::from)
            .collect(),
        next_cursor: chosen.next_cursor,
    }))
}

/// A list request in canonical form, hashed.
fn list_cache_key(
    filter: &ProductFilter,
    page: &PageRequest<ProductSort>,
    cursor: Option<&str>,
) -> String {
    use sha2::{Digest, Sha256};
    let canonical = format!(
        "{filter:?}|{}|{:?}|{}",
        page.limit,
        page.sort.keys,
        cursor.unwrap_or("")
    );
    Sha256::digest(canonical.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn json_response(json: String) -> Response {
    let mut response = (StatusCode::OK, json).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn read_many(state: &AppState, ids: &[Uuid]) -> ApiResult<Batch<Value>> {
    let cached = state.cache.get_many(ids).await;
    let mut found: Vec<Value> = Vec::with_capacity(ids.len());
    let mut misses = Vec::new();
    for (id, entry) in ids.iter().zip(cached) {
        match entry {
            Some(Cached::Present(_, json)) => match serde_json::from_str(&json) {
                Ok(value) => found.push(value),
                Err(_) => misses.push(*id),
            },
            Some(Cached::Gone) => {}
            None => misses.push(*id),
        }
    }
    if !misses.is_empty() {
        let rows = store::find_many(&state.db, &misses).await?;
        state
            .cache
            .put_many(&rows.iter().map(cache_record).collect::<Vec<_>>())
            .await;
        for row in rows {
            found.push(
                serde_json::to_value(Product::from(row))
                    .map_err(|e| ApiError::Internal(e.into()))?,
            );
        }
    }
    Ok(Batch::collect(ids, found, |value| {
        value["product_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or_default()
    }))
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
        .is_some_and(|tags| domain::none_match_hits(tags, version));
    if not_modified {
        return Ok(with_etag(StatusCode::NOT_MODIFIED, version, String::new()));
    }
    Ok(with_etag(StatusCode::OK, version, json))
}

fn not_found(id: Uuid) -> ApiError {
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
    let expected = domain::expected_version(if_match, patch.version)?;
    let mut e = Errors::default();
    let changes = ProductChanges {
        sku: patch
            .sku
            .as_deref()
            .and_then(|v| e.check("sku", domain::parse_sku(v))),
        name: patch
            .name
            .as_deref()
            .and_then(|v| e.check("name", domain::parse_name(v))),
        description: patch
            .description
            .as_deref()
            .and_then(|v| e.check("description", domain::parse_description(v))),
        price_cents: patch
            .price_cents
            .and_then(|v| e.check("price_cents", domain::parse_price(v))),
        currency: patch
            .currency
            .as_deref()
            .and_then(|v| e.check("currency", domain::parse_currency(v))),
        stock: patch
            .stock
            .and_then(|v| e.check("stock", domain::parse_stock(v))),
        category: patch
            .category
            .as_deref()
            .and_then(|v| e.check("category", domain::parse_category(v))),
        tags: patch
            .tags
            .as_deref()
            .and_then(|v| e.check("tags", domain::parse_tags(v))),
        attributes: patch
            .attributes
            .as_ref()
            .and_then(|v| e.check("attributes", domain::parse_attributes(v))),
    };
    if !e.0.is_empty() {
        return Err(ApiError::validation(e.0));
    }
    if changes.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "name at least one field to change",
        ));
    }
    match store::update(&state.db, &state.outbox, id, expected, changes).await? {
        Ok(updated) => {
            state.lists.invalidate().await;
            let record = cache_record(&updated);
            state
                .cache
                .replace_many(std::slice::from_ref(&record))
                .await;
            Ok(with_etag(StatusCode::OK, record.1, record.2))
        }
        Err(UpdateRefused::NotFound) => Err(not_found(id)),
        Err(UpdateRefused::Stale { current }) => Err(ApiError::PreconditionFailed(format!(
            "the product is at version {current}, not {expected}; read it again"
        ))),
    }
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
    store::delete(&state.db, &state.outbox, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    state.cache.put_gone(&[id]).await;
    state.lists.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}
