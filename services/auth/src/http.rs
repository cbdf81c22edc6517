//! The auth API: each handler extracts, calls one use case ([`crate::accounts`]
//! or [`crate::sessions`], the store for `me`), and shapes the answer.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use platform::auth::{Admin, AuthUser, Role};
use platform::extract::{BulkJson, Json};
use platform::rate_limit::Limit;
use platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store;
use crate::tokens::Tokens;
use crate::{AppState, accounts, sessions};

/// `POST /auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Login name: 3 to 50 letters, digits, `.`, `_`, `-`, starting with a
    /// letter or digit; spaces around it are dropped.
    #[schema(min_length = 3, max_length = 50)]
    pub username: String,
    /// 8 to 1024 characters of any script, not only spaces.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Postal address `{line1, line2?, city, postal_code, country}`.
    #[schema(value_type = Option<Object>)]
    pub address: Option<Value>,
}

/// A new user's profile and tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The profile the users service created.
    #[schema(value_type = Object)]
    pub user: Value,
    /// The first token pair, as `POST /auth/login` answers it.
    #[serde(flatten)]
    pub tokens: Tokens,
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Login name (any case).
    pub username: String,
    /// The password; a wrong one is a 401, like an unknown username.
    pub password: String,
}

/// `POST /auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// The refresh token to exchange.
    pub refresh_token: String,
}

/// `POST /auth/logout`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Logout {
    /// The refresh token of this session, to end it too.
    pub refresh_token: Option<String>,
}

/// `PUT /auth/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The password now.
    pub current_password: String,
    /// The new password: 8 to 1024 characters of any script, not only spaces.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// `GET /auth/me`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The caller's id.
    pub user_id: Uuid,
    /// Login name.
    pub username: String,
    /// The role the token carries.
    pub role: Role,
}

/// One item of `POST /auth/credentials`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// A user created through `POST /users`.
    pub user_id: Uuid,
    /// Login name, by the rules of `POST /auth/register`.
    #[schema(min_length = 3, max_length = 50)]
    pub username: String,
    /// Password, by the rules of `POST /auth/register`.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// A created login.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Credential {
    /// The user who can now log in.
    pub user_id: Uuid,
    /// Login name.
    pub username: String,
}

fn client_ip(headers: &HeaderMap, connected: Option<SocketAddr>) -> String {
    // Behind the gateway, the gateway names the client; it overwrites any
    // value the client sent, so this cannot be forged through it.
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .or_else(|| connected.map(|addr| addr.ip().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// Create an account: the profile (in the users service) and the login.
#[utoipa::path(
    post, path = "/auth/register", tag = "auth",
    request_body = Register,
    responses(
        (status = 201, description = "Registered; the profile and a token pair", body = Registered),
        (status = 409, description = "Username or e-mail taken", body = platform::error::Problem),
        (status = 422, description = "Invalid fields", body = platform::error::Problem),
        (status = 503, description = "The users service is unavailable", body = platform::error::Problem),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    Json(body): Json<Register>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    let (profile, tokens) = accounts::register(&state, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            user: profile,
            tokens,
        }),
    ))
}

/// Log in with username and password.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "A token pair", body = Tokens),
        (status = 401, description = "Wrong username or password (the same answer for both)", body = platform::error::Problem),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = platform::error::Problem),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    connected: Option<axum::extract::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> ApiResult<Json<Tokens>> {
    let client = client_ip(&headers, connected.map(|c| c.0.0));
    Ok(Json(sessions::login(&state, body, &client).await?))
}

/// Exchange a refresh token for a new pair; the old one is spent.
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth",
    request_body = Refresh,
    responses(
        (status = 200, description = "A new token pair", body = Tokens),
        (status = 401, description = "Unknown, expired or spent (a spent one also ends its session)", body = platform::error::Problem),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<Refresh>,
) -> ApiResult<Json<Tokens>> {
    Ok(Json(sessions::refresh(&state, &body.refresh_token).await?))
}

/// End this session: the access token and (if given) its refresh token stop working everywhere.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    request_body(content = Option<Logout>, description = "Optionally the session's refresh token"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "No valid token", body = platform::error::Problem),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    caller: AuthUser,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let logout: Logout = if body.iter().all(u8::is_ascii_whitespace) {
        Logout::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| ApiError::BadRequest(format!("malformed JSON: {err}")))?
    };
    sessions::logout(&state, &caller, logout.refresh_token.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of the caller.
#[utoipa::path(
    post, path = "/auth/logout-all", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every token of the user stopped working"),
        (status = 401, description = "No valid token", body = platform::error::Problem),
    )
)]
pub async fn logout_all(State(state): State<AppState>, caller: AuthUser) -> ApiResult<StatusCode> {
    sessions::revoke_everything(&state, caller.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password; every session is revoked.
#[utoipa::path(
    put, path = "/auth/password", tag = "auth",
    request_body = ChangePassword,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed; every earlier token of the user stopped working, and this is a fresh pair", body = Tokens),
        (status = 401, description = "No valid token", body = platform::error::Problem),
        (status = 403, description = "The current password is wrong", body = platform::error::Problem),
        (status = 422, description = "The new password is invalid", body = platform::error::Problem),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(body): Json<ChangePassword>,
) -> ApiResult<Json<Tokens>> {
    Ok(Json(
        sessions::change_password(&state, &caller, body).await?,
    ))
}

/// Who the token belongs to.
#[utoipa::path(
    get, path = "/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "No valid token", body = platform::error::Problem),
    )
)]
pub async fn me(State(state): State<AppState>, caller: AuthUser) -> ApiResult<Json<Me>> {
    let credential = store::credential(&state.db, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this user has no login".into()))?;
    Ok(Json(Me {
        user_id: caller.user_id,
        username: credential.username,
        role: caller.role,
    }))
}

/// Give logins to users created through `POST /users` (bulk, all or nothing).
#[utoipa::path(
    post, path = "/auth/credentials", tag = "auth",
    request_body = Vec<NewCredential>,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Every login was created", body = Vec<Credential>),
        (status = 403, description = "Not an admin", body = platform::error::Problem),
        (status = 409, description = "A username is taken or a user already has a login; `errors` names each item", body = platform::error::Problem),
        (status = 422, description = "Invalid items or unknown users; `errors` names each", body = platform::error::Problem),
    )
)]
pub async fn create_credentials(
    State(state): State<AppState>,
    _: Admin,
    BulkJson(items): BulkJson<NewCredential>,
) -> ApiResult<(StatusCode, Json<Vec<Credential>>)> {
    let created = accounts::create_credentials(&state, &items).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The public keys that verify access tokens.
#[utoipa::path(
    get, path = "/auth/jwks", tag = "auth",
    responses((status = 200, description = "The JWK set", body = Object))
)]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=60")],
        axum::Json(state.keys.jwks()),
    )
}

#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failed logins per username per window.
    pub per_user: Limit,
    /// Failed logins per client address per window.
    pub per_client: Limit,
}
