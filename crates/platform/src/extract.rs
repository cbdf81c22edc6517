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

/// A 200 answer of JSON already serialised (a cached page, say).
pub fn json_text(json: String) -> Response {
    let mut response = (axum::http::StatusCode::OK, json).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
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
/// each decoded on its own so every failure carries its item's index and,
/// below the item, the path of the failing field (`items[1].quantity`): a
/// parsed type refusing a value while it is decoded (a
/// [`crate::quantity::Quantity`] out of range) is reported where a check
/// after decoding would put it.
pub fn bulk_items<T: DeserializeOwned>(value: serde_json::Value) -> Result<Vec<T>, ApiError> {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for item in bulk_item_results(value)? {
        match item {
            Ok(item) => parsed.push(item),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// [`bulk_items`], keeping each item's decoding failure in its place, for a
/// use case that reports them in one answer with its own checks of the
/// items that did decode.
pub fn bulk_item_results<T: DeserializeOwned>(
    value: serde_json::Value,
) -> Result<Vec<Result<T, FieldError>>, ApiError> {
    let serde_json::Value::Array(items) = value else {
        return Err(ApiError::invalid("body", "must be a JSON array of items"));
    };
    if items.is_empty() || items.len() > MAX_BULK_ITEMS {
        return Err(ApiError::invalid(
            "body",
            format!("must hold 1 to {MAX_BULK_ITEMS} items, not {}", items.len()),
        ));
    }
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            serde_path_to_error::deserialize(item).map_err(|err| item_error(&err).at(index))
        })
        .collect())
}

fn item_error(err: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let field = match err.path().iter().next() {
        None => "item".to_owned(),
        Some(_) => err.path().to_string(),
    };
    FieldError::new(field, err.inner().to_string())
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::quantity::Quantity;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Line>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Line {
        quantity: Quantity,
    }

    fn failures(body: serde_json::Value) -> Vec<FieldError> {
        match bulk_items::<Order>(body) {
            Err(ApiError::Validation { errors, .. }) => errors,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn a_refused_value_is_reported_at_its_item_and_field() {
        let errors = failures(json!([
            {"items": [{"quantity": 1}]},
            {"items": [{"quantity": 2}, {"quantity": 0}]},
        ]));
        assert_eq!(
            errors,
            [FieldError::new("items[1].quantity", "must be 1 to 10000").at(1)]
        );
    }

    #[test]
    fn an_item_of_the_wrong_shape_is_reported_as_the_item() {
        let errors = failures(json!([{"items": [{"quantity": 1}]}, "nope"]));
        assert_eq!(errors.len(), 1);
        assert_eq!(
            (errors[0].index, errors[0].field.as_str()),
            (Some(1), "item")
        );
    }
}
