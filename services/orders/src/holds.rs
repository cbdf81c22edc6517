//! Which stock holds orders use, decided once per reservation.
//!
//! A hold lapses in the products service when no confirmation reached it in
//! time (products was away, or cut off from orders). Before releasing one,
//! products' expiry sweep asks here: a hold whose orders were written is
//! confirmed instead, and a hold given up here can no longer be used by a
//! write still in flight: both decisions insert the same primary key in
//! `reservation_outcomes`, so whichever commits second fails or yields.

use axum::extract::State;
use platform::extract::Json;
use platform::internal::InternalCaller;
use platform::{ApiError, ApiResult};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;

/// The constraint a second decision on one reservation breaks: an orders'
/// write whose hold was given up first fails on it.
pub const DECIDED: &str = "reservation_outcomes_pkey";

/// How long the decision to give a hold up is remembered: far longer than
/// any write of orders can take.
const RETENTION: &str = "1 day";

/// The statement, run with the orders' own, that marks `reservation_id` used.
pub fn ordered(reservation_id: Uuid) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO reservation_outcomes (reservation_id, ordered) VALUES ($1, true)",
        [reservation_id.into()],
    )
}

/// The statement that forgets the decisions on reservations products has confirmed.
pub fn forget(reservation_ids: &[Uuid]) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM reservation_outcomes WHERE reservation_id = ANY($1)",
        [reservation_ids.to_vec().into()],
    )
}

/// Decides every undecided hold in `lapsed` as unused, then answers the
/// decision on each (including those an orders' write decided first).
pub async fn decide_lapsed(db: &DatabaseConnection, lapsed: &[Uuid]) -> Result<Verdict, DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO reservation_outcomes (reservation_id, ordered)
         SELECT DISTINCT id, false FROM unnest($1::uuid[]) AS wanted(id)
         ON CONFLICT (reservation_id) DO NOTHING",
        [lapsed.to_vec().into()],
    ))
    .await?;
    // A second statement: its snapshot sees a write of orders that committed
    // while the insert above waited on its key.
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT reservation_id, ordered FROM reservation_outcomes
              WHERE reservation_id = ANY($1)",
            [lapsed.to_vec().into()],
        ))
        .await?;
    let mut verdict = Verdict::default();
    for row in rows {
        let id: Uuid = row.try_get("", "reservation_id")?;
        if row.try_get::<bool>("", "ordered")? {
            verdict.confirm.push(id);
        } else {
            verdict.release.push(id);
        }
    }
    Ok(verdict)
}

/// Forgets decisions to give holds up once no write can be waiting on them.
pub async fn purge(db: &DatabaseConnection) -> Result<u64, DbErr> {
    Ok(db
        .execute_unprepared(&format!(
            "DELETE FROM reservation_outcomes
              WHERE NOT ordered AND decided_at < now() - interval '{RETENTION}'"
        ))
        .await?
        .rows_affected())
}

/// `POST /internal/reservations/lapsed`: holds that lapsed in the products service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lapsed {
    /// The lapsed reservations (1 to 1000).
    pub reservation_ids: Vec<Uuid>,
}

/// What products should do with each lapsed hold.
#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    /// Orders use these: confirm them.
    pub confirm: Vec<Uuid>,
    /// No order uses these, and none ever will: release them.
    pub release: Vec<Uuid>,
}

/// Decides what becomes of holds that lapsed before their confirmation arrived.
pub async fn lapsed(
    State(state): State<AppState>,
    _: InternalCaller,
    Json(body): Json<Lapsed>,
) -> ApiResult<Json<Verdict>> {
    if body.reservation_ids.is_empty() || body.reservation_ids.len() > 1000 {
        return Err(ApiError::invalid(
            "reservation_ids",
            "must name 1 to 1000 reservations",
        ));
    }
    Ok(Json(decide_lapsed(&state.db, &body.reservation_ids).await?))
}
