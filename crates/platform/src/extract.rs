//! Request extractors whose every rejection is a problem+json 4xx.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// Most items one bulk body may carry.
pub const MAX_BULK_ITEMS: usize = 1000;

/// `axum::Json`, with rejections answered as problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "expected a body with `Content-Type: application/json`".into(),
        ),
        JsonRejection::JsonDataError(err) => ApiError::invalid("body", err.body_text()),
        JsonRejection::JsonSyntaxError(err) => {
            ApiError::BadRequest(format!("malformed JSON: {}", err.body_text()))
        }
        JsonRejection::BytesRejection(err) => {
            if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(crate::http::BODY_LIMIT_BYTES)
            } else {
                ApiError::BadRequest(err.body_text())
            }
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// A JSON array of 1 to 1000 items, each decoded on its own so that a wrong
/// type in one item is reported with that item's index.
#[derive(Debug, Clone)]
pub struct BulkJson<T>(pub Vec<T>);

impl<T, S> FromRequest<S> for BulkJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await?;
        bulk_items(value).map(Self)
    }
}

/// Decodes a bulk body already read as JSON: an array of 1 to 1000 items,
/// each decoded on its own so every failure carries its item's index.
pub fn bulk_items<T: DeserializeOwned>(value: serde_json::Value) -> Result<Vec<T>, ApiError> {
    let serde_json::Value::Array(items) = value else {
        return Err(ApiError::invalid("body", "must be a JSON array of items"));
    };
    if items.is_empty() || items.len() > MAX_BULK_ITEMS {
        return Err(ApiError::invalid(
            "body",
            format!("must hold 1 to {MAX_BULK_ITEMS} items, not {}", items.len()),
        ));
    }
    let mut parsed = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<T>(item) {
            Ok(item) => parsed.push(item),
            Err(err) => errors.push(FieldError::new("item", err.to_string()).at(index)),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// `axum::extract::Query`, with rejections answered as 400 problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::BadRequest(format!("bad query parameters: {}", rejection.body_text()))
            })
    }
}

/// `axum::extract::Path`, with rejections (a malformed id) answered as 400 problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection: PathRejection| {
                ApiError::BadRequest(format!("bad path parameter: {}", rejection.body_text()))
            })
    }
}
