//! `Idempotency-Key` as a table: the first request with a key claims it, its
//! answer is stored in the same statement as the orders it created, and a
//! retry (on any replica) within 24 hours gets that answer again.
//!
//! A claim is a lease: a retry that finds the key claimed but unanswered for
//! longer than the lease (the first request's client or replica died) takes
//! the claim over under a new claim id. Completion stores the answer only
//! under the claim id it was given, and otherwise fails its whole statement
//! (`idempotency_claim_lost()`), so two requests with one key never both
//! write orders.

use std::time::Duration;

use axum::http::HeaderMap;
use platform::ApiError;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How long a key is remembered.
const RETENTION: &str = "24 hours";

/// The SQLSTATE a completion fails with when its claim was taken over.
pub const CLAIM_LOST: &str = "SHIK1";

/// An `Idempotency-Key` header's value: 1 to 255 visible characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key `headers` carry, if any; a malformed one is a 400.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let Some(raw) = headers.get("idempotency-key") else {
            return Ok(None);
        };
        raw.to_str()
            .ok()
            .map(str::trim)
            .filter(|key| (1..=255).contains(&key.len()))
            .map(|key| Some(Self(key.to_owned())))
            .ok_or_else(|| {
                ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible characters".into())
            })
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a key says about a request.
#[derive(Debug)]
pub enum Claim {
    /// First use, or a lapsed claim taken over: go ahead under this claim id,
    /// then [`completion`] or [`abandon`].
    Fresh(Uuid),
    /// Already answered: send this again.
    Replay {
        /// The first answer's status.
        status: u16,
        /// The first answer's body.
        body: Value,
    },
    /// Another request with this key is still being processed; its lease
    /// lapses in about this long.
    InProgress(Duration),
    /// The key was used with a different body.
    Mismatch,
}

/// A fingerprint of the request body (as parsed JSON, so formatting does not matter).
pub fn fingerprint(body: &Value) -> String {
    Sha256::digest(body.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Claims `key` for `user_id`, or says what became of its earlier use.
pub async fn claim(
    db: &DatabaseConnection,
    user_id: Uuid,
    key: &str,
    fingerprint: &str,
    lease: Duration,
) -> Result<Claim, DbErr> {
    // A key older than the retention is forgotten, so it may be used anew.
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "DELETE FROM idempotency_keys
              WHERE user_id = $1 AND key = $2 AND created_at < now() - interval '{RETENTION}'"
        ),
        [user_id.into(), key.into()],
    ))
    .await?;
    let claim_id = Uuid::now_v7();
    let lease_secs = lease.as_secs_f64();
    // Someone else may hold it: wait a little for their answer, or their lease.
    for _ in 0..20 {
        let inserted = db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO idempotency_keys (user_id, key, request_hash, claim_id, claimed_at)
                 VALUES ($1, $2, $3, $4, now())
                 ON CONFLICT DO NOTHING",
                [
                    user_id.into(),
                    key.into(),
                    fingerprint.into(),
                    claim_id.into(),
                ],
            ))
            .await?
            .rows_affected();
        if inserted == 1 {
            return Ok(Claim::Fresh(claim_id));
        }
        let row = db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT request_hash, status_code, response,
                        extract(epoch FROM claimed_at + make_interval(secs => $3) - now())::float8 AS lease_left
                   FROM idempotency_keys
                  WHERE user_id = $1 AND key = $2",
                [user_id.into(), key.into(), lease_secs.into()],
            ))
            .await?;
        // Abandoned meanwhile: claim it afresh.
        let Some(row) = row else { continue };
        let hash: String = row.try_get("", "request_hash")?;
        if hash != fingerprint {
            return Ok(Claim::Mismatch);
        }
        let status: Option<i32> = row.try_get("", "status_code")?;
        let body: Option<Value> = row.try_get("", "response")?;
        if let (Some(status), Some(body)) = (status, body) {
            return Ok(Claim::Replay {
                status: status as u16,
                body,
            });
        }
        let lease_left: f64 = row.try_get("", "lease_left")?;
        if lease_left <= 0.0 {
            let taken = db
                .execute(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE idempotency_keys SET claim_id = $3, claimed_at = now()
                      WHERE user_id = $1 AND key = $2 AND response IS NULL
                        AND claimed_at + make_interval(secs => $4) <= now()",
                    [
                        user_id.into(),
                        key.into(),
                        claim_id.into(),
                        lease_secs.into(),
                    ],
                ))
                .await?
                .rows_affected();
            if taken == 1 {
                tracing::info!(%user_id, "took over an Idempotency-Key whose request never answered");
                return Ok(Claim::Fresh(claim_id));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let left = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT greatest(extract(epoch FROM claimed_at + make_interval(secs => $3) - now()), 1)::float8 AS left
               FROM idempotency_keys WHERE user_id = $1 AND key = $2",
            [user_id.into(), key.into(), lease_secs.into()],
        ))
        .await?
        .and_then(|row| row.try_get::<f64>("", "left").ok())
        .unwrap_or(1.0);
    Ok(Claim::InProgress(Duration::from_secs_f64(left.ceil())))
}

/// The statement that stores the answer, to run with the writes that made it
/// true; it fails them all if the claim was taken over meanwhile.
pub fn completion(user_id: Uuid, key: &str, claim_id: Uuid, status: u16, body: Value) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE idempotency_keys
            SET status_code = CASE WHEN claim_id = $3 THEN $4 ELSE idempotency_claim_lost() END,
                response = $5
          WHERE user_id = $1 AND key = $2",
        [
            user_id.into(),
            key.into(),
            claim_id.into(),
            i32::from(status).into(),
            body.into(),
        ],
    )
}

/// Releases a key whose request failed, so a retry runs again (unless a
/// retry has taken the claim over already).
pub async fn abandon(db: &DatabaseConnection, user_id: Uuid, key: &str, claim_id: Uuid) {
    let result = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM idempotency_keys
              WHERE user_id = $1 AND key = $2 AND claim_id = $3 AND response IS NULL",
            [user_id.into(), key.into(), claim_id.into()],
        ))
        .await;
    if let Err(err) = result {
        tracing::warn!(%err, "could not release an idempotency key");
    }
}

/// Whether `err` is a completion failing because its claim was taken over.
pub fn is_claim_lost(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    matches!(
        err,
        DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Database(db)))
            | DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Database(db)))
            if db.code().as_deref() == Some(CLAIM_LOST)
    )
}

/// Forgets keys past their retention.
pub async fn purge(db: &DatabaseConnection) -> Result<u64, DbErr> {
    Ok(db
        .execute_unprepared(&format!(
            "DELETE FROM idempotency_keys WHERE created_at < now() - interval '{RETENTION}'"
        ))
        .await?
        .rows_affected())
}
