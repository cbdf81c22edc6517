//! Routes other services call (never routed by the gateway): the auth
//! service creates a profile at registration, removes it if registration
//! fails afterwards, and reads roles and existence.

use axum::extract::State;
use axum::http::StatusCode;
use platform::bulk::{Batch, parse_ids};
use platform::extract::{Json, Path, Query};
use platform::internal::InternalCaller;
use platform::{ApiError, ApiResult};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::domain::{Address, NewProfile, RawProfile};
use crate::http::User;
use crate::profiles;
use crate::store;

/// A self-registered profile; the id comes from the caller.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The id the new user gets.
    pub user_id: Uuid,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Phone number.
    pub phone: Option<String>,
    pub address: Option<Address>,
}

/// `POST /internal/users`: creates a customer profile with `user.registered`.
pub async fn register(
    State(state): State<AppState>,
    _: InternalCaller,
    Json(registration): Json<Registration>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let profile = NewProfile::parse(RawProfile {
        name: &registration.name,
        email: &registration.email,
        phone: registration.phone.as_deref(),
        address: registration.address.as_ref(),
        role: None,
    })
    .map_err(ApiError::validation)?;
    let user = profiles::create_one(&state, registration.user_id, profile).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// `GET /internal/users/{id}`.
pub async fn get(
    State(state): State<AppState>,
    _: InternalCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<User>> {
    let user = store::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user with id {id}")))?;
    Ok(Json(user.into()))
}

/// The query of `GET /internal/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdsQuery {
    /// Comma-separated ids.
    pub ids: String,
}

/// `GET /internal/users?ids=`: which of these users exist.
pub async fn get_many(
    State(state): State<AppState>,
    _: InternalCaller,
    Query(query): Query<IdsQuery>,
) -> ApiResult<Json<Batch<User>>> {
    let ids = parse_ids(&query.ids)?;
    let found = store::find_many(&state.db, &ids).await?;
    Ok(Json(Batch::collect(
        &ids,
        found.into_iter().map(User::from).collect(),
        |u| u.user_id,
    )))
}

/// `DELETE /internal/users/{id}`: undoes a registration whose credentials could not be stored.
pub async fn unregister(
    State(state): State<AppState>,
    _: InternalCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    store::delete_unchecked(&state.db, &state.outbox, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
