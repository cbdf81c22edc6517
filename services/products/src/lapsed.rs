//! Holds that lapsed before their confirmation arrived.
//!
//! A hold's lifetime bounds how long stock waits for an order that never
//! comes, but a hold can also lapse because its confirmation could not get
//! here (this service was away, or cut off from orders). Only the orders
//! service knows which: the sweep asks it, confirms the holds its orders use
//! and releases the rest. While orders cannot be asked, lapsed holds stay
//! held: selling a unit twice is worse than holding it a while longer.

use std::time::Duration;

use platform::ApiError;
use platform::peer::Peer;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::internal::refresh_caches;
use crate::stock;

/// The orders service, as the sweep sees it.
#[derive(Clone, Debug)]
pub struct Orders {
    peer: Peer,
}

/// The orders service's decision on lapsed holds.
#[derive(Debug, Deserialize)]
struct Verdict {
    confirm: Vec<Uuid>,
    release: Vec<Uuid>,
}

impl Orders {
    /// The orders service at `urls` (a comma list of replicas).
    pub fn new(urls: &str, token: secrecy::SecretString) -> Self {
        Self {
            peer: Peer::new("orders", urls, token, Duration::from_secs(10)),
        }
    }

    async fn decide(&self, lapsed: &[Uuid]) -> Result<Verdict, ApiError> {
        let request = self
            .peer
            .request(Method::POST, "/internal/reservations/lapsed")
            .json(&json!({ "reservation_ids": lapsed }));
        let response = self.peer.send(request).await?;
        self.peer.json(response).await
    }
}

/// One pass of the sweep: every lapsed hold confirmed or released, as the
/// orders service decides; none touched when it cannot be asked.
pub async fn sweep(state: &AppState) -> anyhow::Result<()> {
    let lapsed = stock::lapsed(&state.db).await?;
    if lapsed.is_empty() {
        return Ok(());
    }
    let verdict = match state.orders.decide(&lapsed).await {
        Ok(verdict) => verdict,
        Err(err) => {
            tracing::warn!(count = lapsed.len(), %err, "cannot ask the orders service about lapsed holds; they stay held");
            metrics::counter!("products_lapsed_holds_kept_total").increment(lapsed.len() as u64);
            return Ok(());
        }
    };
    let settled =
        stock::settle_lapsed(&state.db, &state.outbox, &verdict.confirm, &verdict.release).await?;
    if let Some(moved) = settled {
        refresh_caches(state, &moved).await;
    }
    Ok(())
}
