//! The one error type of every service, and its RFC 9457 problem+json form.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One failing field; `index` is the item's position in a bulk body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Position of the item in a bulk request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The field, as named in the request.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A failing field of a single (non-bulk) body.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            index: None,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, located at item `index` of a bulk body.
    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

/// The failing fields of one body, collected while it is parsed so that
/// one 422 names them all.
#[derive(Debug, Default)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// The value of `result`, or `None` with its error recorded under `field`.
    pub fn check<T, E: ToString>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result
            .map_err(|message| self.0.push(FieldError::new(field, message.to_string())))
            .ok()
    }
}

/// An RFC 9457 problem document, as every error response carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The failing fields, for validation and conflict problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Transitions or values that would have been accepted, where that helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

/// Everything a handler can fail with; turned into HTTP in exactly one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: bad JSON, a bad query parameter, a bad path.
    #[error("{0}")]
    BadRequest(String),
    /// No or an invalid bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but this role or user may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist (or must not be revealed).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with current state: a duplicate, a forbidden transition.
    #[error("{detail}")]
    Conflict {
        /// What conflicts.
        detail: String,
        /// The failing items, when the request was a bulk one.
        errors: Vec<FieldError>,
        /// Values that would have been accepted.
        allowed: Option<Vec<String>>,
    },
    /// A precondition (`If-Match`, a version) is stale.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A precondition is required and was not given.
    #[error("{0}")]
    PreconditionRequired(String),
    /// The body is larger than this service accepts.
    #[error("request body too large (at most {0} bytes)")]
    PayloadTooLarge(usize),
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed, but the values do not satisfy the rules.
    #[error("{detail}")]
    Validation {
        /// One line for a person: the only field, or how many fail.
        detail: String,
        /// Every failing field.
        errors: Vec<FieldError>,
    },
    /// A bulk request refused because of the listed items (each with its index).
    #[error("{detail}")]
    Items {
        /// The status the first failing item calls for.
        status: StatusCode,
        /// One line for a person.
        detail: String,
        /// Every failing item.
        errors: Vec<FieldError>,
    },
    /// Too many requests; retry after this many seconds.
    #[error("too many requests; retry in {retry_after} s")]
    TooManyRequests {
        /// Seconds until a retry may succeed.
        retry_after: u64,
        /// The limit that was reached.
        limit: u64,
    },
    /// An upstream service answered with nonsense.
    #[error("{0}")]
    BadGateway(String),
    /// A dependency (database, another service) is unavailable right now.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// An upstream service did not answer in time.
    #[error("{0}")]
    GatewayTimeout(String),
    /// A bug or an unexpected failure: logged with its cause, answered without it.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 422 for a single failing field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// A 422 listing every failing field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!("{} {}", errors[0].field, errors[0].message),
            n => format!("{n} fields are invalid"),
        };
        Self::Validation { detail, errors }
    }

    /// A 409 with no item detail.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict {
            detail: detail.into(),
            errors: Vec::new(),
            allowed: None,
        }
    }

    /// Names the step of a use case an unexpected failure came from, so the
    /// line that logs it says where it happened (`write the orders: <cause>`);
    /// every other error is the client's answer and passes unchanged.
    pub fn in_step(self, step: &'static str) -> Self {
        match self {
            Self::Internal(cause) => Self::Internal(cause.context(step)),
            other => other,
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Items { status, .. } => *status,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem(self) -> Problem {
        let status = self.status();
        let (errors, allowed) = match &self {
            Self::Conflict {
                errors, allowed, ..
            } => (errors.clone(), allowed.clone()),
            Self::Validation { errors, .. } | Self::Items { errors, .. } => (errors.clone(), None),
            _ => (Vec::new(), None),
        };
        let detail = match &self {
            // Never leak the cause of an unexpected failure to the client.
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        };
        problem(status, detail, errors, allowed)
    }
}

/// Builds the problem document for `status`.
pub fn problem(
    status: StatusCode,
    detail: String,
    errors: Vec<FieldError>,
    allowed: Option<Vec<String>>,
) -> Problem {
    let title = status.canonical_reason().unwrap_or("Error").to_owned();
    let slug = title.to_lowercase().replace(' ', "-");
    Problem {
        kind: format!("https://shop.example/problems/{slug}"),
        title,
        status: status.as_u16(),
        detail,
        errors,
        allowed,
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::ServiceUnavailable(why) | Self::BadGateway(why) | Self::GatewayTimeout(why) => {
                tracing::warn!(%why, "dependency failure")
            }
            _ => {}
        }
        let retry_after = match &self {
            Self::TooManyRequests { retry_after, .. } => Some(*retry_after),
            Self::ServiceUnavailable(_) => Some(1),
            _ => None,
        };
        let rate_limit = match &self {
            Self::TooManyRequests { retry_after, limit } => Some((*limit, *retry_after)),
            _ => None,
        };
        let unauthorized = matches!(self, Self::Unauthorized(_));
        let mut response = self.problem().into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some((limit, reset)) = rate_limit {
            headers.insert("ratelimit-limit", HeaderValue::from(limit));
            headers.insert("ratelimit-remaining", HeaderValue::from(0u64));
            headers.insert("ratelimit-reset", HeaderValue::from(reset));
        }
        if unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl ApiError {
    /// The 503 a database error means, when it means the database is away or busy.
    fn database_unavailable(err: &sea_orm::DbErr) -> Option<Self> {
        if !crate::db::is_unavailable_orm(err) {
            return None;
        }
        crate::db::connection_failed();
        Some(Self::ServiceUnavailable(
            "the database is unavailable right now; try again".into(),
        ))
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::database_unavailable(&err).unwrap_or_else(|| Self::Internal(err.into()))
    }
}

/// A database error that one computation met for several waiting requests.
impl From<std::sync::Arc<sea_orm::DbErr>> for ApiError {
    fn from(err: std::sync::Arc<sea_orm::DbErr>) -> Self {
        match std::sync::Arc::try_unwrap(err) {
            Ok(err) => err.into(),
            Err(shared) => Self::database_unavailable(&shared)
                .unwrap_or_else(|| Self::Internal(anyhow::anyhow!("{shared}"))),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&err) {
            crate::db::connection_failed();
            Self::ServiceUnavailable("the database is unavailable right now; try again".into())
        } else {
            Self::Internal(err.into())
        }
    }
}

/// The name of the unique or check constraint a database error violated, if
/// any. Private: [`OnConstraint`] is the one way code asks.
fn violated_constraint(err: &sea_orm::DbErr) -> Option<String> {
    use sea_orm::{DbErr, RuntimeErr};
    let (DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Database(db)))
    | DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Database(db)))) = err
    else {
        return None;
    };
    db.constraint().map(str::to_owned)
}

/// The one way a database refusal becomes an answer: a write that broke the
/// unique or check constraint named in `names` becomes `error()` (a 409 or
/// 422 naming its field, say); any other database error stays a database
/// error (a 503 while the database is away, otherwise a 500).
pub trait OnConstraint<T> {
    /// See the trait.
    fn on_constraint(self, names: &[&str], error: impl FnOnce() -> ApiError) -> ApiResult<T>;
}

impl<T> OnConstraint<T> for Result<T, sea_orm::DbErr> {
    fn on_constraint(self, names: &[&str], error: impl FnOnce() -> ApiError) -> ApiResult<T> {
        self.map_err(|err| match violated_constraint(&err) {
            Some(name) if names.contains(&name.as_str()) => error(),
            _ => err.into(),
        })
    }
}

/// [`ApiError::in_step`] on a result, whatever its error converts from.
pub trait InStep<T> {
    /// See [`ApiError::in_step`].
    fn in_step(self, step: &'static str) -> ApiResult<T>;
}

impl<T, E: Into<ApiError>> InStep<T> for Result<T, E> {
    fn in_step(self, step: &'static str) -> ApiResult<T> {
        self.map_err(|err| err.into().in_step(step))
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_names_where_an_unexpected_failure_happened_and_nothing_else() {
        let failed: ApiResult<()> = Err(ApiError::Internal(anyhow::anyhow!("connection reset")));
        let Err(ApiError::Internal(cause)) = failed.in_step("write the orders") else {
            panic!("an internal error stays internal");
        };
        assert_eq!(format!("{cause:#}"), "write the orders: connection reset");
        let refused: ApiResult<()> = Err(ApiError::conflict("taken"));
        assert!(matches!(
            refused.in_step("store the login"),
            Err(ApiError::Conflict { detail, .. }) if detail == "taken"
        ));
    }
}
