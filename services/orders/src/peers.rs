//! The products service (stock reservations) and the users service (who
//! exists, where they live), called on their internal routes.

use platform::ApiError;
use platform::address::Address;
use platform::money::{Currency, Money};
use platform::peer::Peer;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::domain::Line;

/// A reserved line, priced by the catalogue.
#[derive(Debug, Clone, Deserialize)]
pub struct HeldLine {
    pub product_id: Uuid,
    pub name: String,
    pub unit_price_cents: i64,
    pub currency: String,
}

impl HeldLine {
    /// The unit price the line is held at; products answering one that is
    /// not money is a bad gateway, not the client's fault.
    pub fn unit_price(&self) -> Result<Money, ApiError> {
        let nonsense = || {
            ApiError::BadGateway(format!(
                "products held {} at {} {}, which is no price",
                self.product_id, self.unit_price_cents, self.currency
            ))
        };
        let currency = Currency::parse(&self.currency).map_err(|_| nonsense())?;
        Money::parse(self.unit_price_cents, currency).map_err(|_| nonsense())
    }
}

/// What a reservation answered.
#[derive(Debug, Clone, Deserialize)]
pub struct Reservation {
    /// One line per product.
    pub items: Vec<HeldLine>,
}

/// Stock reservations in the products service.
#[derive(Clone, Debug)]
pub struct Products {
    peer: Peer,
}

impl Products {
    /// The products service through `peer`.
    pub fn new(peer: Peer) -> Self {
        Self { peer }
    }

    /// Holds every line under `reservation_id`, or nothing.
    pub async fn reserve(
        &self,
        reservation_id: Uuid,
        lines: &[Line],
    ) -> Result<Reservation, ApiError> {
        let request = self
            .peer
            .request(Method::POST, "/internal/reservations")
            .json(&json!({ "reservation_id": reservation_id, "items": lines }));
        let response = self.peer.send(request).await?;
        self.peer.json(response).await
    }

    /// The orders exist: their holds stay. Answers the reservations that had
    /// been released meanwhile and so could not be confirmed.
    pub async fn confirm(&self, reservation_ids: &[Uuid]) -> Result<Vec<Uuid>, ApiError> {
        #[derive(Deserialize)]
        struct Answer {
            released: Vec<Uuid>,
        }
        let request = self
            .peer
            .request(Method::POST, "/internal/reservations/confirmations")
            .json(&json!({ "reservation_ids": reservation_ids }));
        let response = self.peer.send(request).await?;
        let answer: Answer = self.peer.json(response).await?;
        Ok(answer.released)
    }

    /// Gives units back: all of the reservation, or (with a part) those lines once.
    pub async fn release(
        &self,
        reservation_id: Uuid,
        part: Option<(Uuid, &[Line])>,
    ) -> Result<(), ApiError> {
        let path = format!("/internal/reservations/{reservation_id}/release");
        let mut request = self.peer.request(Method::POST, &path);
        if let Some((release_id, items)) = part {
            request = request.json(&json!({ "release_id": release_id, "items": items }));
        }
        let response = self.peer.send(request).await?;
        match response.status() {
            // Nothing to release is as good as released.
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.peer.problem(response).await),
        }
    }
}

/// What orders need of a profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub user_id: Uuid,
    /// Where the user lives, if known.
    pub address: Option<Address>,
}

/// Profiles in the users service.
#[derive(Clone, Debug)]
pub struct Users {
    peer: Peer,
}

impl Users {
    /// The users service through `peer`.
    pub fn new(peer: Peer) -> Self {
        Self { peer }
    }

    /// The profiles of `ids` that exist.
    pub async fn profiles(&self, ids: &[Uuid]) -> Result<Vec<Profile>, ApiError> {
        #[derive(Deserialize)]
        struct Batch {
            data: Vec<Profile>,
        }
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(platform::bulk::MAX_BULK_IDS) {
            let list: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
            let path = format!("/internal/users?ids={}", list.join(","));
            let response = self
                .peer
                .send(self.peer.request(Method::GET, &path))
                .await?;
            let batch: Batch = self.peer.json(response).await?;
            found.extend(batch.data);
        }
        Ok(found)
    }
}
