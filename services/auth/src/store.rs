//! Every SQL statement of the auth service.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::entity::{credential, refresh_token};

/// The unique constraint on usernames: a registration that races another
/// for one breaks it.
pub const USERNAME_TAKEN: &str = "user_auth_username_key";
/// The primary key of logins: a user that got a login meanwhile breaks it.
pub const LOGIN_EXISTS: &str = "user_auth_pkey";

/// The login named `username`, compared regardless of case.
#[tracing::instrument(skip(db))]
pub async fn credential_by_username(
    db: &DatabaseConnection,
    username: &str,
) -> Result<Option<credential::Model>, DbErr> {
    credential::Entity::find()
        .filter(
            Expr::expr(Func::lower(Expr::col(credential::Column::Username)))
                .eq(username.to_lowercase()),
        )
        .one(db)
        .await
}

/// The login of `user_id`.
#[tracing::instrument(skip(db))]
pub async fn credential(
    db: &DatabaseConnection,
    user_id: Uuid,
) -> Result<Option<credential::Model>, DbErr> {
    credential::Entity::find_by_id(user_id).one(db).await
}

/// Of `usernames` (lower-cased), those already taken.
pub async fn taken_usernames<C: ConnectionTrait>(
    db: &C,
    usernames: &[String],
) -> Result<Vec<String>, DbErr> {
    credential::Entity::find()
        .select_only()
        .expr(Func::lower(Expr::col(credential::Column::Username)))
        .filter(
            Expr::expr(Func::lower(Expr::col(credential::Column::Username)))
                .is_in(usernames.iter().cloned()),
        )
        .into_tuple()
        .all(db)
        .await
}

/// Of `user_ids`, those that already have a login.
pub async fn users_with_credentials<C: ConnectionTrait>(
    db: &C,
    user_ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    credential::Entity::find()
        .select_only()
        .column(credential::Column::UserId)
        .filter(credential::Column::UserId.is_in(user_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await
}

/// A new login row.
pub fn new_credential(
    user_id: Uuid,
    username: String,
    password_hash: String,
) -> credential::ActiveModel {
    let now = Utc::now().trunc_subsecs(6);
    credential::ActiveModel {
        user_id: Set(user_id),
        username: Set(username),
        password_hash: Set(password_hash),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Stores logins (inside the caller's transaction).
pub async fn insert_credentials<C: ConnectionTrait>(
    db: &C,
    rows: Vec<credential::ActiveModel>,
) -> Result<(), DbErr> {
    credential::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Replaces the password hash of `user_id`.
#[tracing::instrument(skip(db, hash))]
pub async fn set_password_hash(
    db: &DatabaseConnection,
    user_id: Uuid,
    hash: String,
) -> Result<(), DbErr> {
    credential::Entity::update_many()
        .col_expr(credential::Column::PasswordHash, Expr::value(hash))
        .col_expr(credential::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(credential::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes the login of `user_id` (its refresh tokens too).
#[tracing::instrument(skip(db))]
pub async fn delete_credential(db: &DatabaseConnection, user_id: Uuid) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    delete_user_tokens(&txn, user_id).await?;
    credential::Entity::delete_by_id(user_id).exec(&txn).await?;
    txn.commit().await
}

/// Issues a refresh token in `family_id` (a new family for a fresh login).
#[tracing::instrument(skip(db))]
pub async fn issue_refresh_token<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    family_id: Uuid,
    ttl: Duration,
) -> Result<Uuid, DbErr> {
    let token_id = Uuid::new_v4();
    let now = Utc::now().trunc_subsecs(6);
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        token_id: Set(token_id),
        user_id: Set(user_id),
        family_id: Set(family_id),
        expires_at: Set(now + ttl),
        created_at: Set(now),
        spent_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(token_id)
}

/// What presenting a refresh token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Exchanged: the old token is spent, this one replaces it.
    Rotated {
        /// Whose.
        user_id: Uuid,
        /// The new refresh token.
        token_id: Uuid,
        /// Its family: the login session.
        family_id: Uuid,
    },
    /// Unknown or expired.
    Invalid,
    /// Already spent: its whole family has been deleted.
    Reused {
        /// Whose.
        user_id: Uuid,
        /// The family: the session whose access tokens must go too.
        family_id: Uuid,
    },
}

/// Spends `token_id` and issues its successor, or detects reuse and deletes the family.
// A refresh token's id is the token itself: never a span field.
#[tracing::instrument(skip(db, token_id))]
pub async fn rotate_refresh_token(
    db: &DatabaseConnection,
    token_id: Uuid,
    ttl: Duration,
) -> Result<Rotation, DbErr> {
    let txn = db.begin().await?;
    let Some(row) = refresh_token::Entity::find_by_id(token_id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(Rotation::Invalid);
    };
    let now = Utc::now();
    if row.expires_at <= now {
        return Ok(Rotation::Invalid);
    }
    if row.spent_at.is_some() {
        refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::FamilyId.eq(row.family_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        return Ok(Rotation::Reused {
            user_id: row.user_id,
            family_id: row.family_id,
        });
    }
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::SpentAt, Expr::value(now))
        .filter(refresh_token::Column::TokenId.eq(token_id))
        .exec(&txn)
        .await?;
    let next = issue_refresh_token(&txn, row.user_id, row.family_id, ttl).await?;
    txn.commit().await?;
    Ok(Rotation::Rotated {
        user_id: row.user_id,
        token_id: next,
        family_id: row.family_id,
    })
}

/// The owner of a refresh token that is still usable, and when it was issued.
pub async fn refresh_token_owner(
    db: &DatabaseConnection,
    token_id: Uuid,
) -> Result<Option<(Uuid, DateTime<Utc>)>, DbErr> {
    let row = refresh_token::Entity::find_by_id(token_id).one(db).await?;
    Ok(row
        .filter(|row| row.expires_at > Utc::now())
        .map(|row| (row.user_id, row.created_at)))
}

/// Deletes the family of `token_id` if it belongs to `user_id` (a logout).
#[tracing::instrument(skip(db, token_id))]
pub async fn delete_family(
    db: &DatabaseConnection,
    token_id: Uuid,
    user_id: Uuid,
) -> Result<(), DbErr> {
    let Some(row) = refresh_token::Entity::find_by_id(token_id).one(db).await? else {
        return Ok(());
    };
    if row.user_id == user_id {
        refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::FamilyId.eq(row.family_id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Deletes every refresh token of `user_id`.
pub async fn delete_user_tokens<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<u64, DbErr> {
    Ok(refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::UserId.eq(user_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// Deletes expired refresh tokens; returns how many.
pub async fn delete_expired_tokens<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    Ok(refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ExpiresAt.lte(Utc::now()))
        .exec(db)
        .await?
        .rows_affected)
}
