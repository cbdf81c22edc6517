//! Calls to another service's `/internal/*` routes: its replicas taken in
//! turn, the internal token attached, and its problem answers turned back
//! into this service's errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use bytes::Bytes;

use crate::error::{ApiError, FieldError};
use crate::in_process;
use crate::internal::HEADER;

/// Another service, as seen by its callers. Cloned with every request's
/// state, so a clone is one reference count.
#[derive(Clone)]
pub struct Peer(Arc<Shared>);

struct Shared {
    name: &'static str,
    http: reqwest::Client,
    bases: Vec<String>,
    next: AtomicUsize,
    token: SecretString,
    timeout: Duration,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.0.name)
            .field("bases", &self.0.bases)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct RemoteProblem {
    detail: String,
    #[serde(default)]
    errors: Vec<RemoteFieldError>,
    #[serde(default)]
    allowed: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct RemoteFieldError {
    #[serde(default)]
    index: Option<usize>,
    field: String,
    message: String,
}

impl Peer {
    /// The service `name` at `urls` (a comma list of replicas), called with `token`.
    pub fn new(name: &'static str, urls: &str, token: SecretString, timeout: Duration) -> Self {
        let bases = urls
            .split(',')
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Self(Arc::new(Shared {
            name,
            http,
            bases,
            next: AtomicUsize::new(0),
            token,
            timeout,
        }))
    }

    /// A request to `path` on the next replica, carrying the internal token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let turn = self.0.next.fetch_add(1, Ordering::Relaxed);
        let base = self
            .0
            .bases
            .get(turn % self.0.bases.len().max(1))
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1:1");
        self.0
            .http
            .request(method, format!("{base}{path}"))
            .header(HEADER, self.0.token.expose_secret())
    }

    /// Sends `request`; a peer that cannot be reached (or does not answer in time) is a 503.
    pub async fn send(&self, request: RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let unavailable = || {
            ApiError::ServiceUnavailable(format!(
                "the {} service is unavailable; try again shortly",
                self.0.name
            ))
        };
        let (client, request) = request.build_split();
        let request = request.map_err(|err| {
            ApiError::Internal(anyhow::anyhow!(
                "a call to {} is malformed: {err}",
                self.0.name
            ))
        })?;
        if let Some(app) = in_process::lookup(&request.url().as_str().parse().unwrap_or_default()) {
            return self
                .send_in_process(app, request)
                .await
                .ok_or_else(unavailable);
        }
        client.execute(request).await.map_err(|err| {
            tracing::warn!(peer = self.0.name, %err, "call to another service failed");
            unavailable()
        })
    }

    /// Hands `request` to the peer's router in this process (`shop serve`).
    async fn send_in_process(
        &self,
        app: axum::Router,
        request: reqwest::Request,
    ) -> Option<reqwest::Response> {
        let request: http::Request<reqwest::Body> = request.try_into().ok()?;
        let (parts, body) = request.into_parts();
        // Internal calls carry small JSON bodies, never streams.
        let body = axum::body::Body::from(
            body.as_bytes()
                .map(Bytes::copy_from_slice)
                .unwrap_or_default(),
        );
        let response =
            in_process::call(app, http::Request::from_parts(parts, body), self.0.timeout).await;
        let Some(response) = response else {
            tracing::warn!(peer = self.0.name, "call to another service timed out");
            return None;
        };
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.ok()?;
        Some(reqwest::Response::from(http::Response::from_parts(
            parts, bytes,
        )))
    }

    /// Reads a JSON answer, or turns a problem answer into the matching error.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, ApiError> {
        if !response.status().is_success() {
            return Err(self.problem(response).await);
        }
        response.json().await.map_err(|err| {
            ApiError::BadGateway(format!(
                "the {} service answered nonsense: {err}",
                self.0.name
            ))
        })
    }

    /// The error a problem answer of this peer stands for.
    pub async fn problem(&self, response: reqwest::Response) -> ApiError {
        let status = response.status();
        let problem: Option<RemoteProblem> = response.json().await.ok();
        let (detail, errors, allowed) = match problem {
            Some(p) => (
                p.detail,
                p.errors
                    .into_iter()
                    .map(|e| FieldError {
                        index: e.index,
                        field: e.field,
                        message: e.message,
                    })
                    .collect(),
                p.allowed,
            ),
            None => (
                format!("the {} service answered {status}", self.0.name),
                Vec::new(),
                None,
            ),
        };
        match status {
            StatusCode::CONFLICT => ApiError::Conflict {
                detail,
                errors,
                allowed,
            },
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Validation { detail, errors },
            StatusCode::BAD_REQUEST => ApiError::BadRequest(detail),
            StatusCode::NOT_FOUND => ApiError::NotFound(detail),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
                ApiError::ServiceUnavailable(detail)
            }
            _ => ApiError::BadGateway(format!(
                "the {} service answered {status}: {detail}",
                self.0.name
            )),
        }
    }
}
