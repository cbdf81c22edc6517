//! Reading reviews, which anyone may: one, several by id, a product's in
//! pages with filters, an author's newest first, and a product's summary.
//!
//! A product's first pages and its summary are what every product page
//! shows, so they are kept in Redis per product, and every change to the
//! product's reviews drops them ([`changed`]) before it is answered.

use platform::bulk::{Batch, parse_ids};
use platform::cache::GenerationalCache;
use platform::pagination::{Direction, KeyValue, Page, PageRequest};
use platform::{ApiError, ApiResult};
use uuid::Uuid;

use crate::AppState;
use crate::domain::{self, Summary};
use crate::http::{ProductReviewsQuery, Review, UserReviewsQuery};
use crate::store::{self, ReviewFilter, ReviewSort};
use crate::writing::not_found;

const NEWEST_FIRST: &[(ReviewSort, Direction)] = &[(ReviewSort::CreatedAt, Direction::Desc)];

pub async fn one(state: &AppState, review_id: Uuid) -> ApiResult<Review> {
    store::find(&state.db, review_id)
        .await?
        .map(Review::from)
        .ok_or_else(|| not_found(review_id))
}

/// The reviews `ids` (a comma list of up to 100) names, and the ids that name none.
pub async fn by_ids(state: &AppState, ids: &str) -> ApiResult<Batch<Review>> {
    let ids = parse_ids(ids)?;
    let found = store::find_many(&state.db, &ids).await?;
    Ok(Batch::collect(
        &ids,
        found.into_iter().map(Review::from).collect(),
        |review| review.review_id,
    ))
}

async fn page_of(
    state: &AppState,
    filter: ReviewFilter,
    page: PageRequest<ReviewSort>,
) -> ApiResult<Page<Review>> {
    let rows = store::list(&state.db, &filter, &page).await?;
    let page = page.finish(rows, |row| {
        let mut keys: Vec<KeyValue> = page.sort.keys.iter().map(|(k, _)| k.key_of(row)).collect();
        keys.push(KeyValue::Uuid(row.review_id));
        keys
    });
    Ok(page.map(Review::from))
}

/// Drops the cached pages and summary of the product, whose reviews changed.
pub async fn changed(pages: &GenerationalCache, product_id: Uuid) {
    pages.invalidate_in(&product_id.to_string()).await;
}

fn json<T: serde::Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(|err| ApiError::Internal(err.into()))
}

/// A page of the product's reviews, as JSON.
pub async fn of_product(
    state: &AppState,
    product_id: Uuid,
    query: &ProductReviewsQuery,
) -> ApiResult<String> {
    let rating = query
        .rating
        .map(|stars| {
            domain::Rating::parse(stars)
                .map(domain::Rating::stars)
                .map_err(|message| ApiError::BadRequest(format!("`rating` {message}")))
        })
        .transpose()?;
    let page = PageRequest::parse(
        query.limit,
        query.cursor.as_deref(),
        query.sort.as_deref(),
        NEWEST_FIRST,
    )?;
    let filter = ReviewFilter {
        product_id: Some(product_id),
        user_id: None,
        rating,
        verified: query.verified,
    };
    // Later pages are walked rarely and each by one reader: only first pages are kept.
    if page.after.is_some() {
        return json(&page_of(state, filter, page).await?);
    }
    let scope = product_id.to_string();
    let key = format!(
        "page|{rating:?}|{:?}|{:?}|{}",
        query.verified, page.sort.keys, page.limit
    );
    let lookup = state.pages.get_in(&scope, &key).await;
    if let Some(hit) = lookup.hit {
        return Ok(hit);
    }
    let answer = json(&page_of(state, filter, page).await?)?;
    state.pages.put(&lookup, &key, &answer).await;
    Ok(answer)
}

/// A page of the user's reviews, newest first.
pub async fn of_user(
    state: &AppState,
    user_id: Uuid,
    query: &UserReviewsQuery,
) -> ApiResult<Page<Review>> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), None, NEWEST_FIRST)?;
    let filter = ReviewFilter {
        product_id: None,
        user_id: Some(user_id),
        rating: None,
        verified: None,
    };
    page_of(state, filter, page).await
}

/// The product's summary, as JSON.
pub async fn summary(state: &AppState, product_id: Uuid) -> ApiResult<String> {
    let lookup = state.pages.get_in(&product_id.to_string(), "summary").await;
    if let Some(hit) = lookup.hit {
        return Ok(hit);
    }
    let stars = store::stars_of(&state.db, product_id).await?;
    let answer = json::<Summary>(&domain::summarise(product_id, &stars))?;
    state.pages.put(&lookup, "summary", &answer).await;
    Ok(answer)
}
