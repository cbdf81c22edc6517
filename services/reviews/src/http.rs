//! The reviews API: each handler extracts, calls one use case
//! ([`crate::writing`] for changes, [`crate::reading`] for reads), and
//! shapes the answer.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::AuthUser;
use platform::bulk::Batch;
use platform::error::Problem;
use platform::extract::{Json, Path, Query, json_text};
use platform::pagination::Page;
use platform::{ApiResult, versioning};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::domain::{self, Summary};
use crate::entity::Model;
use crate::{reading, writing};

/// A product review. `verified_purchase` is true when the author has a
/// delivered order holding the product; it turns true when such an order is
/// delivered after the review was written.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Review {
    pub review_id: Uuid,
    pub product_id: Uuid,
    /// The author.
    pub user_id: Uuid,
    /// The author's name, renamed with them.
    pub author_name: String,
    /// 1 to 5 stars.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i16,
    pub title: String,
    pub body: String,
    pub verified_purchase: bool,
    /// Optimistic-locking version of the text; also the ETag.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Model> for Review {
    fn from(row: Model) -> Self {
        Self {
            review_id: row.review_id,
            product_id: row.product_id,
            user_id: row.user_id,
            author_name: row.author_name,
            rating: row.rating,
            title: row.title,
            body: row.body,
            verified_purchase: row.verified_purchase,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The body of `POST /products/{product_id}/reviews`. Title and body are
/// trimmed before their lengths are counted, in characters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReviewBody {
    /// 1 to 5 stars.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i64,
    #[schema(min_length = 1, max_length = 120)]
    pub title: String,
    #[schema(min_length = 1, max_length = 5000)]
    pub body: String,
}

/// The body of `PATCH /reviews/{id}`: the new text, and the version being
/// changed unless `If-Match` names it. Any other field (the rating, the
/// product) is refused with a 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewPatch {
    #[schema(min_length = 1, max_length = 120)]
    pub title: Option<String>,
    #[schema(min_length = 1, max_length = 5000)]
    pub body: Option<String>,
    /// The version being changed (or send `If-Match`).
    pub version: Option<i64>,
}

/// The query of `GET /products/{product_id}/reviews`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductReviewsQuery {
    /// Only reviews with this many stars, 1 to 5.
    #[param(minimum = 1, maximum = 5)]
    pub rating: Option<i64>,
    /// `true` for verified purchases only, `false` for the others.
    pub verified: Option<bool>,
    /// Comma list of `created_at`, `rating`; `-` for descending. Default `-created_at`.
    pub sort: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The query of `GET /users/{user_id}/reviews`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserReviewsQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The query of `GET /reviews`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewIdsQuery {
    /// Review ids, comma-separated (1 to 100).
    #[param(value_type = Vec<Uuid>, style = Form, explode = false, min_items = 1, max_items = 100)]
    pub ids: String,
}

fn with_etag(status: StatusCode, review: Review) -> Response {
    let tag = HeaderValue::from_str(&versioning::etag(i64::from(review.version)));
    let mut response = (status, Json(review)).into_response();
    if let Ok(tag) = tag {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// Review a product: one review per user and product.
#[utoipa::path(
    post, path = "/products/{product_id}/reviews", tag = "reviews",
    params(("product_id" = Uuid, Path, description = "The product reviewed")),
    request_body = NewReviewBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The review, with `ETag: \"<version>\"`", body = Review),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such product, or it was deleted", body = Problem),
        (status = 409, description = "The caller has already reviewed this product", body = Problem),
        (status = 422, description = "Invalid fields; `errors` names each", body = Problem),
        (status = 503, description = "The products or users service is unavailable", body = Problem),
    )
)]
pub async fn write_review(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(product_id): Path<Uuid>,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    let review = domain::parse_new_review(&body)?;
    let written = writing::write(&state, &caller, product_id, review).await?;
    Ok(with_etag(StatusCode::CREATED, written.into()))
}

/// A product's reviews, a page at a time; no token needed.
#[utoipa::path(
    get, path = "/products/{product_id}/reviews", tag = "reviews",
    params(("product_id" = Uuid, Path, description = "The product"), ProductReviewsQuery),
    responses(
        (status = 200, description = "A page of reviews (an empty one for a product without any)", body = Page<Review>),
        (status = 400, description = "A bad filter, sort, limit or cursor", body = Problem),
    )
)]
pub async fn list_product_reviews(
    State(state): State<AppState>,
    Path(product_id): Path<Uuid>,
    Query(query): Query<ProductReviewsQuery>,
) -> ApiResult<Response> {
    Ok(json_text(
        reading::of_product(&state, product_id, &query).await?,
    ))
}

/// A product's review count, mean rating and histogram; no token needed.
#[utoipa::path(
    get, path = "/products/{product_id}/reviews/summary", tag = "reviews",
    params(("product_id" = Uuid, Path, description = "The product")),
    responses((status = 200, description = "The summary (zeros for a product without reviews)", body = Summary))
)]
pub async fn product_summary(
    State(state): State<AppState>,
    Path(product_id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(json_text(reading::summary(&state, product_id).await?))
}

/// Several reviews by id; no token needed.
#[utoipa::path(
    get, path = "/reviews", tag = "reviews",
    params(ReviewIdsQuery),
    responses(
        (status = 200, description = "`{data, missing}` in the order asked", body = Batch<Review>),
        (status = 400, description = "`ids` is missing, or names more than 100 or a non-UUID", body = Problem),
    )
)]
pub async fn read_reviews(
    State(state): State<AppState>,
    Query(query): Query<ReviewIdsQuery>,
) -> ApiResult<Json<Batch<Review>>> {
    Ok(Json(reading::by_ids(&state, &query.ids).await?))
}

/// One review; no token needed.
#[utoipa::path(
    get, path = "/reviews/{id}", tag = "reviews",
    params(("id" = Uuid, Path, description = "Review id")),
    responses(
        (status = 200, description = "The review, with `ETag: \"<version>\"`", body = Review),
        (status = 404, description = "No such review", body = Problem),
    )
)]
pub async fn read_review(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(with_etag(StatusCode::OK, reading::one(&state, id).await?))
}

/// The author edits the text of a review, if it is still at the version they read.
#[utoipa::path(
    patch, path = "/reviews/{id}", tag = "reviews",
    params(
        ("id" = Uuid, Path, description = "Review id"),
        ("If-Match" = Option<String>, Header, description = "The ETag being changed (or `version` in the body)"),
    ),
    request_body = ReviewPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The review at its next version", body = Review),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not the author (admins included)", body = Problem),
        (status = 404, description = "No such review", body = Problem),
        (status = 412, description = "The version is stale", body = Problem),
        (status = 422, description = "Invalid text, or a field that cannot change", body = Problem),
        (status = 428, description = "Neither If-Match nor `version` was given", body = Problem),
    )
)]
pub async fn edit_review(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    let edited = writing::edit(&state, &caller, id, if_match, &body).await?;
    Ok(with_etag(StatusCode::OK, edited.into()))
}

/// The author or an admin deletes a review.
#[utoipa::path(
    delete, path = "/reviews/{id}", tag = "reviews",
    params(("id" = Uuid, Path, description = "Review id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Neither the author nor an admin", body = Problem),
        (status = 404, description = "No such review", body = Problem),
    )
)]
pub async fn delete_review(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    writing::delete(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's reviews, newest first; an empty list when there are none.
#[utoipa::path(
    get, path = "/users/{user_id}/reviews", tag = "reviews",
    params(("user_id" = Uuid, Path, description = "The author"), UserReviewsQuery),
    responses(
        (status = 200, description = "A page of the user's reviews", body = Page<Review>),
        (status = 400, description = "A bad limit or cursor", body = Problem),
    )
)]
pub async fn list_user_reviews(
    State(state): State<AppState>,
    Path(user_id): Path<Uuid>,
    Query(query): Query<UserReviewsQuery>,
) -> ApiResult<Json<Page<Review>>> {
    Ok(Json(reading::of_user(&state, user_id, &query).await?))
}
