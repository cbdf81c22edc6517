//! Calls to the users service's internal routes, which own every profile and role.

use platform::ApiError;
use platform::auth::Role;
use platform::peer::Peer;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// A client for `/internal/users`.
#[derive(Clone, Debug)]
pub struct UsersClient {
    peer: Peer,
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
    /// A client for the users service through `peer`.
    pub fn new(peer: Peer) -> Self {
        Self { peer }
    }

    /// Creates the profile of a registering user; answers it as JSON.
    pub async fn register(&self, registration: &Value) -> Result<Value, ApiError> {
        let request = self
            .peer
            .request(Method::POST, "/internal/users")
            .json(registration);
        let response = self.peer.send(request).await?;
        self.peer.json(response).await
    }

    /// Removes a profile whose registration could not be completed.
    pub async fn unregister(&self, user_id: Uuid) -> Result<(), ApiError> {
        let request = self
            .peer
            .request(Method::DELETE, &format!("/internal/users/{user_id}"));
        let response = self.peer.send(request).await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.peer.problem(response).await),
        }
    }

    /// The profile of `user_id`, or `None` when it no longer exists.
    pub async fn profile(&self, user_id: Uuid) -> Result<Option<Profile>, ApiError> {
        let request = self
            .peer
            .request(Method::GET, &format!("/internal/users/{user_id}"));
        let response = self.peer.send(request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.peer.json(response).await.map(Some)
    }

    /// Which of `ids` have no profile.
    pub async fn missing(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, ApiError> {
        #[derive(Deserialize)]
        struct Batch {
            missing: Vec<Uuid>,
        }
        let mut missing = Vec::new();
        for chunk in ids.chunks(platform::bulk::MAX_BULK_IDS) {
            let list: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
            let path = format!("/internal/users?ids={}", list.join(","));
            let response = self
                .peer
                .send(self.peer.request(Method::GET, &path))
                .await?;
            let batch: Batch = self.peer.json(response).await?;
            missing.extend(batch.missing);
        }
        Ok(missing)
    }
}
