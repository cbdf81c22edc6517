//! The inbox: processing an event at most once per consumer, by event id, in
//! the same transaction as the effects it has.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait,
};
use uuid::Uuid;

/// Runs `effects` in a transaction that also records `event_id` as processed
/// by `consumer`; an event already recorded is skipped. Returns whether it ran.
pub async fn process<F, T>(
    db: &DatabaseConnection,
    consumer: &str,
    event_id: Uuid,
    effects: F,
) -> Result<Option<T>, DbErr>
where
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> futures::future::BoxFuture<'t, Result<T, DbErr>>,
{
    let txn = db.begin().await?;
    let first = txn
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [consumer.into(), event_id.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if !first {
        txn.rollback().await?;
        return Ok(None);
    }
    let value = effects(&txn).await?;
    txn.commit().await?;
    Ok(Some(value))
}
