//! Listing and searching products: a page of any filter and sort, from the
//! list cache when the same question was asked moments ago, from the ranked
//! matches kept in memory for a search text (see [`crate::search`]), or from
//! PostgreSQL; and bulk reads by id through the product cache.

use std::collections::HashMap;

use platform::bulk::Batch;
use platform::cache::Cached;
use platform::pagination::{Direction, KeyValue, Page, PageRequest};
use platform::{ApiError, ApiResult};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::domain;
use crate::entity::product::Model;
use crate::http::{Product, ProductQuery, cache_record};
use crate::search::{self, Match, Matches};
use crate::store::{self, Matching, ProductFilter, ProductSort};

const DEFAULT_SORT: &[(ProductSort, Direction)] = &[(ProductSort::CreatedAt, Direction::Desc)];
const SEARCH_SORT: &[(ProductSort, Direction)] = &[(ProductSort::Relevance, Direction::Desc)];

/// The page `filter`, `limit`, `cursor` and `sort` ask for, as JSON.
pub async fn list(
    state: &AppState,
    filter: ProductFilter,
    limit: Option<i64>,
    cursor: Option<&str>,
    sort: Option<&str>,
) -> ApiResult<String> {
    let default_sort = if filter.q.is_some() {
        SEARCH_SORT
    } else {
        DEFAULT_SORT
    };
    let mut page = PageRequest::parse(limit, cursor, sort, default_sort)?;
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
    let cache_key = list_cache_key(&filter, &page, cursor);
    let lookup = state.lists.get(&cache_key).await;
    if let Some(json) = &lookup.hit {
        return Ok(json.clone());
    }
    let searched = match (filter.q.as_deref(), lookup.generation()) {
        (Some(q), Some(generation)) => {
            search_in_memory(state, generation, q, &filter, &mut page).await?
        }
        _ => None,
    };
    let result = match searched {
        Some(result) => result,
        None => list_in_postgres(state, &filter, &mut page).await?,
    };
    let json = serde_json::to_string(&result).map_err(|err| ApiError::Internal(err.into()))?;
    state.lists.put(&lookup, &cache_key, &json).await;
    Ok(json)
}

/// A page computed by Postgres: filters, order and limit in one query, or
/// for a search in two (see [`search_in_postgres`]).
async fn list_in_postgres(
    state: &AppState,
    filter: &ProductFilter,
    page: &mut PageRequest<ProductSort>,
) -> ApiResult<Page<Product>> {
    if filter.q.is_some() {
        return search_in_postgres(state, filter, page).await;
    }
    let rows = store::list(&state.db, filter, page).await?;
    let result = page.finish(rows, |row| {
        let mut keys: Vec<KeyValue> = page.sort.keys.iter().map(|(k, _)| k.key_of(row)).collect();
        keys.push(KeyValue::Uuid(row.product_id));
        keys
    });
    Ok(result.map(Product::from))
}

/// A search page from Postgres: the page's matches, then their rows by id.
/// Postgres ranks and sorts every product the words match (2,472 for
/// "wireless" in electronics, in stock); carrying whole rows through that
/// sort made a search seen for the first time a fifth slower.
async fn search_in_postgres(
    state: &AppState,
    filter: &ProductFilter,
    page: &mut PageRequest<ProductSort>,
) -> ApiResult<Page<Product>> {
    let mut matching = Matching::from_mode(page.mode.as_deref());
    let mut found = store::search_page(&state.db, filter, page, matching).await?;
    // Words that find nothing on a first page may be a typo: try the names.
    if found.is_empty() && page.after.is_none() && matching == Matching::Words {
        matching = Matching::Similar;
        found = store::search_page(&state.db, filter, page, matching).await?;
    }
    page.mode = matching.as_mode();
    let chosen = page.finish(found.iter().collect(), |m| {
        found.cursor_keys(m, &page.sort.keys)
    });
    with_rows(state, chosen).await
}

/// A search page from the ranked matches of `q` kept in memory (see
/// [`crate::search`]), the same answer [`search_in_postgres`] gives; `None`
/// when `q` is asked for the first time or matches too many products to keep.
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
    let Some(words) = matches(matching).await? else {
        return Ok(None);
    };
    let Matches::All(found) = words.as_ref() else {
        return Ok(None);
    };
    let mut all = found;
    let mut chosen = search::page(all, filter, page);
    // Words that find nothing on a first page may be a typo: try the names.
    let typos;
    if chosen.is_empty() && matching == Matching::Words && page.after.is_none() {
        matching = Matching::Similar;
        let Some(kept) = matches(matching).await? else {
            return Ok(None);
        };
        typos = kept;
        let Matches::All(similar) = typos.as_ref() else {
            return Ok(None);
        };
        all = similar;
        chosen = search::page(all, filter, page);
    }
    page.mode = matching.as_mode();
    let chosen = page.finish(chosen, |m| all.cursor_keys(m, &page.sort.keys));
    with_rows(state, chosen).await.map(Some)
}

/// The products of a page of matches, in its order. A product deleted since
/// its match was read is left out.
async fn with_rows(state: &AppState, chosen: Page<&Match>) -> ApiResult<Page<Product>> {
    let ids: Vec<Uuid> = chosen.data.iter().map(|m| m.product_id).collect();
    let mut rows: HashMap<Uuid, Model> = store::find_many(&state.db, &ids)
        .await?
        .into_iter()
        .map(|row| (row.product_id, row))
        .collect();
    Ok(Page {
        data: ids
            .iter()
            .filter_map(|id| rows.remove(id))
            .map(Product::from)
            .collect(),
        next_cursor: chosen.next_cursor,
    })
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

/// The products `ids` names, from the cache where it has them.
pub async fn read_many(state: &AppState, ids: &[Uuid]) -> ApiResult<Batch<Value>> {
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

impl ProductQuery {
    /// True when the query asks for a list (a filter, a sort or paging).
    pub(crate) fn has_list_parameters(&self) -> bool {
        self.q.is_some()
            || self.category.is_some()
            || self.tags.is_some()
            || self.min_price.is_some()
            || self.max_price.is_some()
            || self.in_stock.is_some()
            || self.min_rating.is_some()
            || self.sort.is_some()
            || self.limit.is_some()
            || self.cursor.is_some()
    }

    /// The filter the query asks for, every value checked.
    pub(crate) fn filter(&self) -> ApiResult<ProductFilter> {
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
        if let Some(min) = self.min_rating
            && !(0.0..=5.0).contains(&min)
        {
            return Err(ApiError::BadRequest(
                "`min_rating` must be between 0 and 5".into(),
            ));
        }
        Ok(ProductFilter {
            min_rating: self.min_rating,
            q,
            category: self.category.as_deref().map(|c| c.trim().to_lowercase()),
            tags,
            min_price: self.min_price,
            max_price: self.max_price,
            in_stock: self.in_stock,
        })
    }
}
