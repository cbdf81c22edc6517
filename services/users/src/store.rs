//! Every SQL statement of the users service.

use chrono::{DateTime, SubsecRound, Utc};
use events::{Envelope, Event, UserDeleted, UserProfile};
use platform::auth::Role;
use platform::outbox::Outbox;
use platform::pagination::{Direction, KeyKind, PageRequest, SortField, after_condition};
use sea_orm::sea_query::extension::postgres::PgExpr;
use sea_orm::sea_query::{Expr, IntoColumnRef, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, FromQueryResult, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::{DeleteRefused, NewProfile, ProfileChanges};
use crate::entity::{self, Column, Entity as Users, Model};

/// The service name events carry as their source.
const SOURCE: &str = "users";

/// The fields `GET /users` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSort {
    /// By name.
    Name,
    /// By e-mail.
    Email,
    /// By creation time.
    CreatedAt,
}

impl SortField for UserSort {
    const ALL: &'static [Self] = &[UserSort::Name, UserSort::Email, UserSort::CreatedAt];

    fn name(self) -> &'static str {
        match self {
            UserSort::Name => "name",
            UserSort::Email => "email",
            UserSort::CreatedAt => "created_at",
        }
    }

    fn kind(self) -> KeyKind {
        match self {
            UserSort::Name | UserSort::Email => KeyKind::Text,
            UserSort::CreatedAt => KeyKind::Time,
        }
    }
}

impl UserSort {
    fn column(self) -> Column {
        match self {
            UserSort::Name => Column::Name,
            UserSort::Email => Column::Email,
            UserSort::CreatedAt => Column::CreatedAt,
        }
    }

    /// The value of this key in `row`, as a cursor carries it.
    pub fn key_of(self, row: &Model) -> platform::pagination::KeyValue {
        use platform::pagination::KeyValue;
        match self {
            UserSort::Name => KeyValue::Text(row.name.clone()),
            UserSort::Email => KeyValue::Text(row.email.clone()),
            UserSort::CreatedAt => KeyValue::Time(row.created_at),
        }
    }
}

/// The filters of `GET /users`, already valid.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    /// Exact (lower-cased) e-mail.
    pub email: Option<crate::domain::Email>,
    pub role: Option<Role>,
    /// Country code of the address.
    pub country: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

fn column_expr(column: Column) -> SimpleExpr {
    Expr::col((Users, column).into_column_ref()).into()
}

/// Escapes `%`, `_` and `\` so a search term matches literally inside `ILIKE`.
fn like_literal(term: &str) -> String {
    let mut escaped = String::with_capacity(term.len() + 2);
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One page of users matching `filter`, in the requested order.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &DatabaseConnection,
    filter: &UserFilter,
    page: &PageRequest<UserSort>,
) -> Result<Vec<Model>, DbErr> {
    let mut query = Users::find();
    if let Some(name) = &filter.name {
        query = query
            .filter(Expr::col((Users, Column::Name)).ilike(format!("%{}%", like_literal(name))));
    }
    if let Some(email) = &filter.email {
        query = query.filter(Column::Email.eq(email.as_str()));
    }
    if let Some(role) = filter.role {
        query = query.filter(Column::Role.eq(role.as_str()));
    }
    if let Some(country) = &filter.country {
        query = query.filter(Column::AddressCountry.eq(country.as_str()));
    }
    if let Some(after) = filter.created_after {
        query = query.filter(Column::CreatedAt.gte(after));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(Column::CreatedAt.lt(before));
    }
    // The id breaks ties in the direction of the last key, so that a single
    // index serves both the order and the keyset condition.
    let tiebreak = page
        .sort
        .keys
        .last()
        .map_or(Direction::Asc, |(_, direction)| *direction);
    let mut columns: Vec<(SimpleExpr, Direction)> = page
        .sort
        .keys
        .iter()
        .map(|(key, direction)| (column_expr(key.column()), *direction))
        .collect();
    columns.push((column_expr(Column::UserId), tiebreak));
    if let Some(after) = &page.after {
        query = query.filter(after_condition(&columns, after));
    }
    for (key, direction) in &page.sort.keys {
        query = query.order_by(key.column(), direction.order());
    }
    query
        .order_by(Column::UserId, tiebreak.order())
        .limit(page.fetch_limit())
        .all(db)
        .await
}

/// The users with these ids (in no particular order).
#[tracing::instrument(skip(db))]
pub async fn find_many(db: &DatabaseConnection, ids: &[Uuid]) -> Result<Vec<Model>, DbErr> {
    Users::find()
        .filter(Column::UserId.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// One user, if it exists. The statement is written out rather than built:
/// this is the hottest read, and building it with sea-query took about a
/// sixth of the instructions of a whole `GET /users/{id}`.
#[tracing::instrument(skip(db))]
pub async fn find(db: &DatabaseConnection, id: Uuid) -> Result<Option<Model>, DbErr> {
    const BY_ID: &str = "SELECT * FROM users WHERE user_id = $1";
    // `Model::find_by_statement`, not `Users::find().from_raw_sql`: the
    // latter builds the SELECT it then replaces.
    Model::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        BY_ID,
        [id.into()],
    ))
    .one(db)
    .await
}

/// Which of `emails` are already taken.
async fn taken_emails<C: sea_orm::ConnectionTrait>(
    db: &C,
    emails: &[String],
) -> Result<Vec<String>, DbErr> {
    let rows: Vec<String> = Users::find()
        .select_only()
        .column(Column::Email)
        .filter(Column::Email.is_in(emails.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows)
}

fn profile_event(model: &Model) -> UserProfile {
    UserProfile {
        user_id: model.user_id,
        email: model.email.clone(),
        name: model.name.clone(),
        role: model.role.clone(),
    }
}

/// The unique constraint on e-mail addresses: a write that races another
/// for one address breaks it.
pub const EMAIL_TAKEN: &str = "users_email_key";

/// The items of a creation whose e-mail address is already registered, by
/// index, with the address.
#[derive(Debug)]
pub struct EmailsTaken(pub Vec<(usize, String)>);

/// Creates every profile in one transaction with its `user.registered` event,
/// or none. A race for an address ends in a violation of [`EMAIL_TAKEN`].
#[tracing::instrument(skip_all, fields(count = profiles.len()))]
pub async fn create(
    db: &DatabaseConnection,
    outbox: &Outbox,
    profiles: Vec<(Uuid, NewProfile)>,
) -> Result<Result<Vec<Model>, EmailsTaken>, DbErr> {
    let emails: Vec<String> = profiles
        .iter()
        .map(|(_, p)| p.email.as_str().to_owned())
        .collect();
    // Postgres keeps microseconds; answer with what a later read will return.
    let now = Utc::now().trunc_subsecs(6);
    let models: Vec<Model> = profiles
        .into_iter()
        .map(|(user_id, profile)| {
            let address = profile.address;
            Model {
                user_id,
                name: profile.name,
                email: profile.email.into_string(),
                phone: profile.phone,
                address_line1: address.as_ref().map(|a| a.line1.clone()),
                address_line2: address.as_ref().and_then(|a| a.line2.clone()),
                address_city: address.as_ref().map(|a| a.city.clone()),
                address_postal_code: address.as_ref().map(|a| a.postal_code.clone()),
                address_country: address.as_ref().map(|a| a.country.clone()),
                role: profile.role.as_str().to_owned(),
                created_at: now,
                updated_at: now,
            }
        })
        .collect();
    let txn = db.begin().await?;
    let taken = taken_emails(&txn, &emails).await?;
    if !taken.is_empty() {
        let taken = emails
            .into_iter()
            .enumerate()
            .filter(|(_, email)| taken.contains(email))
            .collect();
        return Ok(Err(EmailsTaken(taken)));
    }
    let rows = models.iter().cloned().map(|m| m.into_active_model());
    Users::insert_many(rows)
        .exec_without_returning(&txn)
        .await?;
    let envelopes: Vec<Envelope> = models
        .iter()
        .map(|m| Envelope::new(SOURCE, Event::UserRegistered(profile_event(m))))
        .collect();
    outbox.enqueue(&txn, &envelopes).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(Ok(models))
}

/// Why an update changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum UpdateRefused {
    /// There is no such user.
    NotFound,
    /// It would demote the last admin.
    LastAdmin,
}

/// Applies `changes` to user `id` with its `user.updated` event. An address
/// taken meanwhile ends in a violation of [`EMAIL_TAKEN`].
#[tracing::instrument(skip(db, outbox))]
pub async fn update(
    db: &DatabaseConnection,
    outbox: &Outbox,
    id: Uuid,
    changes: ProfileChanges,
) -> Result<Result<Updated, UpdateRefused>, DbErr> {
    let txn = db.begin().await?;
    if changes.role.is_some() {
        // Role changes queue one behind another, so two admins demoting each
        // other at once cannot both see the other as the admin who remains.
        txn.execute(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtext('users: role changes'))",
        ))
        .await?;
    }
    let Some(current) = Users::find_by_id(id).lock_exclusive().one(&txn).await? else {
        return Ok(Err(UpdateRefused::NotFound));
    };
    let role_changed = changes
        .role
        .is_some_and(|role| role.as_str() != current.role);
    if role_changed && current.role == Role::Admin.as_str() {
        let other_admins = Users::find()
            .filter(Column::Role.eq(Role::Admin.as_str()))
            .filter(Column::UserId.ne(id))
            .count(&txn)
            .await?;
        if other_admins == 0 {
            return Ok(Err(UpdateRefused::LastAdmin));
        }
    }
    let mut row = current.into_active_model();
    if let Some(name) = changes.name {
        row.name = Set(name);
    }
    if let Some(email) = changes.email {
        row.email = Set(email.into_string());
    }
    if let Some(phone) = changes.phone {
        row.phone = Set(Some(phone));
    }
    if let Some(address) = changes.address {
        row.address_line1 = Set(Some(address.line1));
        row.address_line2 = Set(address.line2);
        row.address_city = Set(Some(address.city));
        row.address_postal_code = Set(Some(address.postal_code));
        row.address_country = Set(Some(address.country));
    }
    if let Some(role) = changes.role {
        row.role = Set(role.as_str().to_owned());
    }
    row.updated_at = Set(Utc::now().trunc_subsecs(6));
    let updated = Users::update(row).exec(&txn).await?;
    let event = Envelope::new(SOURCE, Event::UserUpdated(profile_event(&updated)));
    outbox.enqueue(&txn, &[event]).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(Ok(Updated {
        user: updated,
        role_changed,
    }))
}

/// A profile after an update.
#[derive(Debug)]
pub struct Updated {
    /// The row as it is now.
    pub user: Model,
    /// Whether its role changed: every token of the user must then go.
    pub role_changed: bool,
}

/// Deletes every user in `ids` with a `user.deleted` event each, or none.
#[tracing::instrument(skip(db, outbox))]
pub async fn delete(
    db: &DatabaseConnection,
    outbox: &Outbox,
    ids: &[Uuid],
) -> Result<Result<(), DeleteRefused>, DbErr> {
    let txn = db.begin().await?;
    let found: Vec<(Uuid, String)> = Users::find()
        .select_only()
        .columns([Column::UserId, Column::Role])
        .filter(Column::UserId.is_in(ids.iter().copied()))
        .order_by_asc(Column::UserId)
        .lock_exclusive()
        .into_tuple()
        .all(&txn)
        .await?;
    let found: Vec<(Uuid, Role)> = found
        .into_iter()
        .map(|(id, role)| (id, Role::parse(&role).unwrap_or(Role::Customer)))
        .collect();
    if let Err(refused) = crate::domain::check_deletable(ids, &found) {
        return Ok(Err(refused));
    }
    delete_rows(&txn, outbox, ids).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(Ok(()))
}

/// Deletes `id` whatever its role: for undoing a creation that could not be completed.
#[tracing::instrument(skip(db, outbox))]
pub async fn delete_unchecked(
    db: &DatabaseConnection,
    outbox: &Outbox,
    id: Uuid,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    delete_rows(&txn, outbox, &[id]).await?;
    txn.commit().await?;
    outbox.notify();
    Ok(())
}

async fn delete_rows(
    txn: &sea_orm::DatabaseTransaction,
    outbox: &Outbox,
    ids: &[Uuid],
) -> Result<(), DbErr> {
    Users::delete_many()
        .filter(Condition::all().add(Column::UserId.is_in(ids.iter().copied())))
        .exec(txn)
        .await?;
    let envelopes: Vec<Envelope> = ids
        .iter()
        .map(|&user_id| Envelope::new(SOURCE, Event::UserDeleted(UserDeleted { user_id })))
        .collect();
    outbox.enqueue(txn, &envelopes).await?;
    Ok(())
}

/// The role of a stored row (the column's check constraint admits only these).
pub fn role_of(model: &entity::Model) -> Role {
    Role::parse(&model.role).unwrap_or(Role::Customer)
}
