//! Calls to the users service's internal routes, which own every profile and role.

use std::time::Duration;

use platform::auth::Role;
use platform::internal::HEADER;
use platform::{ApiError, FieldError};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// A client for `/internal/users`.
#[derive(Clone)]
pub struct UsersClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl std::fmt::Debug for UsersClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsersClient")
            .field("base", &self.base)
            .finish()
    }
}

/// A problem document as another service answers it.
#[derive(Debug, Deserialize)]
struct RemoteProblem {
    detail: String,
    #[serde(default)]
    errors: Vec<RemoteFieldError>,
}

#[derive(Debug, Deserialize)]
struct RemoteFieldError {
    field: String,
    message: String,
}

/// The part of a profile auth needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's role.
    pub role: Role,
}

impl UsersClient {
    /// A client for the users service at `base`, authenticating with `token`.
    pub fn new(base: String, token: SecretString) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { http, base, token }
    }

    fn unavailable(err: &reqwest::Error) -> ApiError {
        tracing::warn!(%err, "users service call failed");
        ApiError::ServiceUnavailable("the users service is unavailable; try again shortly".into())
    }

    async fn relay_problem(response: reqwest::Response) -> ApiError {
        let status = response.status();
        let problem: Option<RemoteProblem> = response.json().await.ok();
        let (detail, errors) = match problem {
            Some(p) => (
                p.detail,
                p.errors
                    .into_iter()
                    .map(|e| FieldError::new(e.field, e.message))
                    .collect(),
            ),
            None => (format!("the users service answered {status}"), Vec::new()),
        };
        match status {
            StatusCode::CONFLICT => ApiError::Conflict {
                detail,
                errors,
                allowed: None,
            },
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Validation { detail, errors },
            StatusCode::BAD_REQUEST => ApiError::BadRequest(detail),
            StatusCode::NOT_FOUND => ApiError::NotFound(detail),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::ServiceUnavailable(detail),
            _ => ApiError::BadGateway(format!("the users service answered {status}: {detail}")),
        }
    }

    /// Creates the profile of a registering user; answers it as JSON.
    pub async fn register(&self, registration: &Value) -> Result<Value, ApiError> {
        let response = self
            .http
            .post(format!("{}/internal/users", self.base))
            .header(HEADER, self.token.expose_secret())
            .json(registration)
            .send()
            .await
            .map_err(|err| Self::unavailable(&err))?;
        if response.status() != StatusCode::CREATED {
            return Err(Self::relay_problem(response).await);
        }
        response.json().await.map_err(|err| {
            ApiError::BadGateway(format!("the users service answered nonsense: {err}"))
        })
    }

    /// Removes a profile whose registration could not be completed.
    pub async fn unregister(&self, user_id: Uuid) -> Result<(), ApiError> {
        let response = self
            .http
            .delete(format!("{}/internal/users/{user_id}", self.base))
            .header(HEADER, self.token.expose_secret())
            .send()
            .await
            .map_err(|err| Self::unavailable(&err))?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(Self::relay_problem(response).await),
        }
    }

    /// The profile of `user_id`, or `None` when it no longer exists.
    pub async fn profile(&self, user_id: Uuid) -> Result<Option<Profile>, ApiError> {
        let response = self
            .http
            .get(format!("{}/internal/users/{user_id}", self.base))
            .header(HEADER, self.token.expose_secret())
            .send()
            .await
            .map_err(|err| Self::unavailable(&err))?;
        match response.status() {
            StatusCode::OK => response.json().await.map(Some).map_err(|err| {
                ApiError::BadGateway(format!("the users service answered nonsense: {err}"))
            }),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::relay_problem(response).await),
        }
    }

    /// Which of `ids` have no profile.
    pub async fn missing(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, ApiError> {
        let mut missing = Vec::new();
        for chunk in ids.chunks(platform::bulk::MAX_BULK_IDS) {
            let list: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
            let response = self
                .http
                .get(format!(
                    "{}/internal/users?ids={}",
                    self.base,
                    list.join(",")
                ))
                .header(HEADER, self.token.expose_secret())
                .send()
                .await
                .map_err(|err| Self::unavailable(&err))?;
            if response.status() != StatusCode::OK {
                return Err(Self::relay_problem(response).await);
            }
            #[derive(Deserialize)]
            struct Batch {
                missing: Vec<Uuid>,
            }
            let batch: Batch = response.json().await.map_err(|err| {
                ApiError::BadGateway(format!("the users service answered nonsense: {err}"))
            })?;
            missing.extend(batch.missing);
        }
        Ok(missing)
    }
}
