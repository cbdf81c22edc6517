//! `Idempotency-Key` as a table: the first request with a key claims it, its
//! answer is stored in the same transaction as the orders it created, and a
//! retry (on any replica) within 24 hours gets that answer again.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How long a key is remembered.
const RETENTION: &str = "24 hours";

/// What a key says about a request.
#[derive(Debug)]
pub enum Claim {
    /// First use: go ahead, then [`complete`] or [`abandon`].
    Fresh,
    /// Already answered: send this again.
    Replay {
        /// The first answer's status.
        status: u16,
        /// The first answer's body.
        body: Value,
    },
    /// Another request with this key is still being processed.
    InProgress,
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
    let inserted = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            [user_id.into(), key.into(), fingerprint.into()],
        ))
        .await?
        .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    // Someone else holds it: wait a little for their answer.
    for _ in 0..20 {
        let row = db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT request_hash, status_code, response FROM idempotency_keys
                  WHERE user_id = $1 AND key = $2",
                [user_id.into(), key.into()],
            ))
            .await?;
        let Some(row) = row else {
            // Abandoned meanwhile: the caller may try again.
            return Ok(Claim::InProgress);
        };
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
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(Claim::InProgress)
}

/// The statement that stores the answer, to run with the writes that made it true.
pub fn completion(user_id: Uuid, key: &str, status: u16, body: Value) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE user_id = $1 AND key = $2",
        [
            user_id.into(),
            key.into(),
            i32::from(status).into(),
            body.into(),
        ],
    )
}

/// Releases a key whose request failed, so a retry runs again.
pub async fn abandon(db: &DatabaseConnection, user_id: Uuid, key: &str) {
    let result = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND response IS NULL",
            [user_id.into(), key.into()],
        ))
        .await;
    if let Err(err) = result {
        tracing::warn!(%err, "could not release an idempotency key");
    }
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
