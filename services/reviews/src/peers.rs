//! What reviews asks other services: whether a product exists now (the
//! products service's public read), and an author's name when no `user.*`
//! event has brought it yet (the users service's internal read).

use chrono::{DateTime, Utc};
use platform::ApiError;
use platform::peer::Peer;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use uuid::Uuid;

/// The catalogue, asked before a review is written.
#[derive(Clone, Debug)]
pub struct Products {
    peer: Peer,
}

impl Products {
    pub fn new(peer: Peer) -> Self {
        Self { peer }
    }

    /// Whether the product exists and is not deleted.
    pub async fn exists(&self, product_id: Uuid) -> Result<bool, ApiError> {
        let response = self
            .peer
            .send(
                self.peer
                    .request(Method::GET, &format!("/products/{product_id}")),
            )
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.peer.problem(response).await),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Profile {
    name: String,
    updated_at: DateTime<Utc>,
}

/// The user profiles, for authors whose `user.registered` has not arrived yet.
#[derive(Clone, Debug)]
pub struct Users {
    peer: Peer,
}

impl Users {
    pub fn new(peer: Peer) -> Self {
        Self { peer }
    }

    /// The user's name and when it was last set; `None` when there is no such user.
    pub async fn name_of(
        &self,
        user_id: Uuid,
    ) -> Result<Option<(String, DateTime<Utc>)>, ApiError> {
        let response = self
            .peer
            .send(
                self.peer
                    .request(Method::GET, &format!("/internal/users/{user_id}")),
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let profile: Profile = self.peer.json(response).await?;
        Ok(Some((profile.name, profile.updated_at)))
    }
}
