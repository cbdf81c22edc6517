//! The users API: each handler extracts, checks who may make the call, calls
//! one use case ([`crate::profiles`] for changes, the store for reads), and
//! shapes the answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::{Admin, AuthUser, Role, Staff};
use platform::bulk::{Batch, parse_ids};
use platform::extract::{BulkJson, Json, Path, Query};
use platform::pagination::{Direction, Page, PageRequest};
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::domain::{self, Address, ProfileChanges};
use crate::entity::Model;
use crate::store::{self, UserFilter, UserSort};
use crate::{AppState, profiles};

/// A user profile as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// The user's id.
    pub user_id: Uuid,
    /// Display name.
    pub name: String,
    /// E-mail address (lower-cased).
    pub email: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<Address>,
    /// What the user may do: `customer`, `support` or `admin`.
    pub role: Role,
    /// When the profile was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Model> for User {
    fn from(row: Model) -> Self {
        let role = store::role_of(&row);
        let address = match (
            row.address_line1,
            row.address_city,
            row.address_postal_code,
            row.address_country,
        ) {
            (Some(line1), Some(city), Some(postal_code), Some(country)) => Some(Address {
                line1,
                line2: row.address_line2,
                city,
                postal_code,
                country,
            }),
            _ => None,
        };
        Self {
            user_id: row.user_id,
            name: row.name,
            email: row.email,
            phone: row.phone,
            address,
            role,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// One item of `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// E-mail address, unique.
    pub email: String,
    /// Phone number.
    pub phone: String,
    /// Postal address.
    pub address: Address,
    /// Role; `customer` when absent.
    pub role: Option<Role>,
}

/// The body of `PATCH /users/{id}`: only the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New name.
    pub name: Option<String>,
    /// New e-mail address.
    pub email: Option<String>,
    /// New phone number.
    pub phone: Option<String>,
    /// New address (replaces the old one whole).
    pub address: Option<Address>,
    /// New role (admins only).
    pub role: Option<Role>,
}

/// The query of `GET /users` and `DELETE /users`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Ids for a bulk read, comma-separated (1 to 100); not combinable with filters.
    #[param(value_type = Option<Vec<Uuid>>, style = Form, explode = false, min_items = 1, max_items = 100)]
    pub ids: Option<String>,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    /// Exact e-mail address.
    pub email: Option<String>,
    /// `customer`, `support` or `admin`.
    pub role: Option<String>,
    /// ISO 3166-1 alpha-2 country of the address.
    pub country: Option<String>,
    /// Created at or after (RFC 3339).
    pub created_after: Option<String>,
    /// Created before (RFC 3339).
    pub created_before: Option<String>,
    /// Comma list of `name`, `email`, `created_at`; `-` for descending. Default `-created_at`.
    pub sort: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl UserQuery {
    fn has_list_parameters(&self) -> bool {
        self.name.is_some()
            || self.email.is_some()
            || self.role.is_some()
            || self.country.is_some()
            || self.created_after.is_some()
            || self.created_before.is_some()
            || self.sort.is_some()
            || self.limit.is_some()
            || self.cursor.is_some()
    }

    fn filter(&self) -> ApiResult<UserFilter> {
        let time = |name: &str, raw: &Option<String>| -> ApiResult<Option<DateTime<Utc>>> {
            raw.as_deref()
                .map(|raw| {
                    DateTime::parse_from_rfc3339(raw)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            ApiError::BadRequest(format!(
                                "`{name}` must be an RFC 3339 time such as 2026-01-31T12:00:00Z"
                            ))
                        })
                })
                .transpose()
        };
        let role = match self.role.as_deref() {
            None => None,
            Some(raw) => Some(Role::parse(raw).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "`role` must be customer, support or admin, not `{raw}`"
                ))
            })?),
        };
        let email = match self.email.as_deref() {
            None => None,
            Some(raw) => Some(
                domain::Email::parse(raw)
                    .map_err(|message| ApiError::BadRequest(format!("`email` {message}")))?,
            ),
        };
        let country = match self.country.as_deref() {
            None => None,
            Some(raw) if raw.len() == 2 && raw.chars().all(|c| c.is_ascii_alphabetic()) => {
                Some(raw.to_uppercase())
            }
            Some(raw) => {
                return Err(ApiError::BadRequest(format!(
                    "`country` must be an ISO 3166-1 alpha-2 code, not `{raw}`"
                )));
            }
        };
        Ok(UserFilter {
            name: self
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            email,
            role,
            country,
            created_after: time("created_after", &self.created_after)?,
            created_before: time("created_before", &self.created_before)?,
        })
    }
}

const DEFAULT_SORT: &[(UserSort, Direction)] = &[(UserSort::CreatedAt, Direction::Desc)];

/// Create users (bulk, all or nothing).
#[utoipa::path(
    post, path = "/users", tag = "users",
    request_body = Vec<NewUser>,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Every user was created", body = Vec<User>),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "Not an admin", body = platform::error::Problem),
        (status = 409, description = "An e-mail is taken; `errors` names each item", body = platform::error::Problem),
        (status = 422, description = "Invalid items; `errors` names each", body = platform::error::Problem),
    )
)]
pub async fn create_users(
    State(state): State<AppState>,
    _: Admin,
    BulkJson(items): BulkJson<NewUser>,
) -> ApiResult<(StatusCode, Json<Vec<User>>)> {
    let created = profiles::create(&state, &items).await?;
    Ok((
        StatusCode::CREATED,
        Json(created.into_iter().map(User::from).collect()),
    ))
}

/// List users with filters, or read several by `ids`.
#[utoipa::path(
    get, path = "/users", tag = "users",
    params(UserQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users (`{data, next_cursor}`), or with `ids` `{data, missing}`", body = Page<User>),
        (status = 400, description = "A bad filter, sort, limit or cursor", body = platform::error::Problem),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "Not support or admin", body = platform::error::Problem),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    _: Staff,
    Query(query): Query<UserQuery>,
) -> ApiResult<Response> {
    if let Some(ids) = &query.ids {
        if query.has_list_parameters() {
            return Err(ApiError::BadRequest(
                "`ids` reads by id and cannot be combined with filters or paging".into(),
            ));
        }
        let ids = parse_ids(ids)?;
        let found = store::find_many(&state.db, &ids).await?;
        let batch = Batch::collect(&ids, found.into_iter().map(User::from).collect(), |u| {
            u.user_id
        });
        return Ok(Json(batch).into_response());
    }
    let filter = query.filter()?;
    let page = PageRequest::parse(
        query.limit,
        query.cursor.as_deref(),
        query.sort.as_deref(),
        DEFAULT_SORT,
    )?;
    let rows = store::list(&state.db, &filter, &page).await?;
    let result = page.finish(rows, |row| {
        let mut keys: Vec<_> = page.sort.keys.iter().map(|(k, _)| k.key_of(row)).collect();
        keys.push(platform::pagination::KeyValue::Uuid(row.user_id));
        keys
    });
    Ok(Json(result.map(User::from)).into_response())
}

/// Read one user.
#[utoipa::path(
    get, path = "/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "A customer asking for another user", body = platform::error::Problem),
        (status = 404, description = "No such user", body = platform::error::Problem),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<User>> {
    domain::may_read(&caller, id)?;
    let user = store::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user with id {id}")))?;
    Ok(Json(user.into()))
}

/// Change a user's profile.
#[utoipa::path(
    patch, path = "/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    request_body = UserPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "Not this user or an admin; or a non-admin changing a role", body = platform::error::Problem),
        (status = 404, description = "No such user", body = platform::error::Problem),
        (status = 409, description = "The e-mail is taken, or the change would leave no admin", body = platform::error::Problem),
        (status = 422, description = "Invalid fields", body = platform::error::Problem),
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(patch): Json<UserPatch>,
) -> ApiResult<Json<User>> {
    let changes = ProfileChanges::parse(
        patch.name.as_deref(),
        patch.email.as_deref(),
        patch.phone.as_deref(),
        patch.address.as_ref(),
        patch.role,
    )
    .map_err(ApiError::validation)?;
    domain::may_update(&caller, id, &changes)?;
    let updated = profiles::update(&state, id, changes).await?;
    Ok(Json(updated.user.into()))
}

/// Delete one user (admins cannot be deleted).
#[utoipa::path(
    delete, path = "/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "Not an admin", body = platform::error::Problem),
        (status = 404, description = "No such user", body = platform::error::Problem),
        (status = 409, description = "The user is an admin", body = platform::error::Problem),
    )
)]
pub async fn delete_user(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    profiles::delete(&state, &[id]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete several users by `ids`, all or nothing.
#[utoipa::path(
    delete, path = "/users", tag = "users",
    params(("ids" = Vec<Uuid>, Query, style = Form, explode = false, min_items = 1, max_items = 100, description = "The users' ids, comma-separated (1 to 100)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "All deleted"),
        (status = 400, description = "Missing or malformed `ids`", body = platform::error::Problem),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "Not an admin", body = platform::error::Problem),
        (status = 404, description = "An id is unknown; nothing was deleted", body = platform::error::Problem),
        (status = 409, description = "An id is an admin; nothing was deleted", body = platform::error::Problem),
    )
)]
pub async fn delete_users(
    State(state): State<AppState>,
    _: Admin,
    Query(query): Query<UserQuery>,
) -> ApiResult<StatusCode> {
    if query.has_list_parameters() {
        return Err(ApiError::BadRequest(
            "`DELETE /users` takes only `ids`".into(),
        ));
    }
    let raw = query
        .ids
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("`ids` is required".into()))?;
    let ids = parse_ids(raw)?;
    profiles::delete(&state, &ids).await?;
    Ok(StatusCode::NO_CONTENT)
}
