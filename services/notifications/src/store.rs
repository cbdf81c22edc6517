//! Every SQL statement of the notifications service: the projection of
//! users, the messages and their queue, the pace of sending, and the log the
//! API lists.

use chrono::{SubsecRound, Utc};
use platform::pagination::{Direction, KeyKind, PageRequest, SortField, after_condition};
use sea_orm::sea_query::{Expr, IntoColumnRef, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use crate::entity::{contact, notification};
use crate::templates::Mail;

/// A claim older than this belongs to a sender that died mid-send: the
/// message is sent again (it may have left; mail is at least once).
const STALE_CLAIM: &str = "10 minutes";

/// Records `user_id`'s address and name (a new user or a change).
pub async fn upsert_contact(
    txn: &DatabaseTransaction,
    user_id: Uuid,
    email: &str,
    name: &str,
) -> Result<(), DbErr> {
    contact::Entity::insert(contact::ActiveModel {
        user_id: Set(user_id),
        email: Set(email.to_owned()),
        name: Set(name.to_owned()),
        deleted: Set(false),
        updated_at: Set(Utc::now()),
        last_mailed_at: NotSet,
    })
    .on_conflict(
        OnConflict::column(contact::Column::UserId)
            .update_columns([
                contact::Column::Email,
                contact::Column::Name,
                contact::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// What is known of `user_id`, if anything.
pub async fn contact(
    txn: &DatabaseTransaction,
    user_id: Uuid,
) -> Result<Option<contact::Model>, DbErr> {
    contact::Entity::find_by_id(user_id).one(txn).await
}

/// Records that `user_id` was deleted: its later messages fail.
pub async fn mark_deleted(txn: &DatabaseTransaction, user_id: Uuid) -> Result<(), DbErr> {
    contact::Entity::update_many()
        .col_expr(contact::Column::Deleted, true.into())
        .filter(contact::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Gives messages that waited for `user_id`'s address that address.
pub async fn address_waiting(
    txn: &DatabaseTransaction,
    user_id: Uuid,
    email: &str,
) -> Result<(), DbErr> {
    notification::Entity::update_many()
        .col_expr(
            notification::Column::Recipient,
            Some(email.to_owned()).into(),
        )
        .col_expr(notification::Column::LastError, None::<String>.into())
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::Status.eq("pending"))
        .filter(notification::Column::Recipient.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// A message an event asked for.
pub struct NewMessage<'a> {
    /// The event (one message per event).
    pub event_id: Uuid,
    /// Whom it is about.
    pub user_id: Uuid,
    pub kind: &'a str,
    /// Its address, when known.
    pub recipient: Option<String>,
    /// `pending`, or `failed` for a deleted user.
    pub status: &'a str,
    /// Why it has no address, if it has none.
    pub why: Option<&'a str>,
    /// What it says.
    pub mail: Mail,
}

/// Records `message`, unless its event was recorded before.
pub async fn insert_message(
    txn: &DatabaseTransaction,
    message: NewMessage<'_>,
) -> Result<(), DbErr> {
    let NewMessage {
        event_id,
        user_id,
        kind,
        recipient,
        status,
        why,
        mail,
    } = message;
    notification::Entity::insert(notification::ActiveModel {
        notification_id: Set(Uuid::now_v7()),
        event_id: Set(event_id),
        user_id: Set(user_id),
        kind: Set(kind.to_owned()),
        recipient: Set(recipient),
        subject: Set(mail.subject),
        body_text: Set(mail.text),
        body_html: Set(mail.html),
        status: Set(status.to_owned()),
        attempts: Set(0),
        last_error: Set(why.map(str::to_owned)),
        created_at: Set(Utc::now().trunc_subsecs(6)),
        sent_at: Set(None),
        next_attempt_at: Set(Utc::now()),
        sending_since: Set(None),
    })
    .on_conflict(
        OnConflict::column(notification::Column::EventId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Moves the pace row forward if the last mail left `interval_secs` ago, in
/// `txn` (whose row lock makes senders take turns); `false` when too soon.
pub async fn claim_slot(txn: &DatabaseTransaction, interval_secs: f64) -> Result<bool, DbErr> {
    Ok(txn
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE mail_pace SET last_mail_at = now()
              WHERE last_mail_at <= now() - make_interval(secs => $1)
             RETURNING last_mail_at",
            [interval_secs.into()],
        ))
        .await?
        .is_some())
}

/// Seconds until the next slot opens.
pub async fn slot_wait(txn: &DatabaseTransaction, interval_secs: f64) -> Result<f64, DbErr> {
    Ok(txn
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT extract(epoch FROM last_mail_at + make_interval(secs => $1) - now())::float8 AS wait
               FROM mail_pace",
            [interval_secs.into()],
        ))
        .await?
        .and_then(|row| row.try_get::<f64>("", "wait").ok())
        .unwrap_or(0.0))
}

/// The message that goes next: the oldest waiting one of the user mailed
/// longest ago, among users whose oldest waiting message can go now.
pub async fn next_message(txn: &DatabaseTransaction) -> Result<Option<notification::Model>, DbErr> {
    notification::Entity::find()
        .from_raw_sql(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT n.* FROM (
                     SELECT DISTINCT ON (user_id) *
                       FROM notifications
                      WHERE status = 'pending'
                      ORDER BY user_id, created_at, notification_id
                 ) n
                 LEFT JOIN user_contacts c ON c.user_id = n.user_id
                  WHERE n.recipient IS NOT NULL
                    AND n.next_attempt_at <= now()
                    AND (n.sending_since IS NULL
                         OR n.sending_since < now() - interval '{STALE_CLAIM}')
                  ORDER BY c.last_mailed_at NULLS FIRST, n.created_at, n.notification_id
                  LIMIT 1"
            ),
        ))
        .one(txn)
        .await
}

/// Marks `message` as being sent, and its user as mailed now.
pub async fn mark_claimed(
    txn: &DatabaseTransaction,
    message: &notification::Model,
) -> Result<(), DbErr> {
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE notifications SET sending_since = now() WHERE notification_id = $1",
        [message.notification_id.into()],
    ))
    .await?;
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE user_contacts SET last_mailed_at = now() WHERE user_id = $1",
        [message.user_id.into()],
    ))
    .await?;
    Ok(())
}

/// Moves the pace row to now: the mail server just answered.
pub async fn mail_left(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared(
        "UPDATE mail_pace SET last_mail_at = greatest(last_mail_at, clock_timestamp())",
    )
    .await?;
    Ok(())
}

/// Records that message `id` left.
pub async fn mark_sent(db: &DatabaseConnection, id: Uuid, attempts: i32) -> Result<(), DbErr> {
    notification::Entity::update_many()
        .col_expr(notification::Column::Status, "sent".into())
        .col_expr(notification::Column::Attempts, attempts.into())
        .col_expr(notification::Column::SentAt, Some(Utc::now()).into())
        .col_expr(
            notification::Column::SendingSince,
            Option::<chrono::DateTime<Utc>>::None.into(),
        )
        .filter(notification::Column::NotificationId.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt at message `id`: tried again after `delay_secs`,
/// or `failed` for good when `given_up`.
pub async fn mark_failed_attempt(
    db: &DatabaseConnection,
    id: Uuid,
    attempts: i32,
    error: String,
    given_up: bool,
    delay_secs: f64,
) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE notifications
            SET attempts = $2, last_error = $3, sending_since = NULL,
                status = CASE WHEN $4 THEN 'failed' ELSE status END,
                next_attempt_at = now() + make_interval(secs => $5)
          WHERE notification_id = $1",
        [
            id.into(),
            attempts.into(),
            error.into(),
            given_up.into(),
            delay_secs.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Puts messages that failed for good (not those of deleted users) back in
/// the queue with fresh attempts, for `shop mail retry-failed` once the mail
/// server is fixed. Returns how many.
pub async fn retry_failed(db: &DatabaseConnection) -> Result<u64, DbErr> {
    Ok(db
        .execute_unprepared(
            "UPDATE notifications
                SET status = 'pending', attempts = 0, next_attempt_at = now(), sending_since = NULL
              WHERE status = 'failed' AND recipient IS NOT NULL",
        )
        .await?
        .rows_affected())
}

/// The one order of the log: newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedAt;

impl SortField for CreatedAt {
    const ALL: &'static [Self] = &[CreatedAt];

    fn name(self) -> &'static str {
        "created_at"
    }

    fn kind(self) -> KeyKind {
        KeyKind::Time
    }
}

fn column(column: notification::Column) -> SimpleExpr {
    Expr::col((notification::Entity, column).into_column_ref()).into()
}

/// Which messages a list shows.
#[derive(Debug, Default)]
pub struct MessageFilter<'a> {
    /// Only this user's.
    pub user_id: Option<Uuid>,
    /// Only this kind.
    pub kind: Option<&'a str>,
    /// Only this status.
    pub status: Option<&'a str>,
}

/// One page of the log, newest first.
pub async fn list(
    db: &DatabaseConnection,
    filter: &MessageFilter<'_>,
    page: &PageRequest<CreatedAt>,
) -> Result<Vec<notification::Model>, DbErr> {
    use notification::{Column, Entity as Notifications};
    let mut select = Notifications::find();
    if let Some(user_id) = filter.user_id {
        select = select.filter(Column::UserId.eq(user_id));
    }
    if let Some(kind) = filter.kind {
        select = select.filter(Column::Kind.eq(kind));
    }
    if let Some(status) = filter.status {
        select = select.filter(Column::Status.eq(status));
    }
    let keys = [
        (column(Column::CreatedAt), Direction::Desc),
        (column(Column::NotificationId), Direction::Desc),
    ];
    if let Some(after) = &page.after {
        select = select.filter(after_condition(&keys, after));
    }
    select
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::NotificationId)
        .limit(page.fetch_limit())
        .all(db)
        .await
}
