//! The auth API: each handler extracts, applies the rules, calls the store or
//! the users service, and shapes the answer.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use platform::auth::{Admin, AuthUser, Role};
use platform::extract::{BulkJson, Json};
use platform::rate_limit::Limit;
use platform::revocation;
use platform::{ApiError, ApiResult, FieldError};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::domain::{parse_password, parse_username};
use crate::store::{self, Rotation};
use crate::tokens::{self, Tokens};

/// `POST /auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Login name: 3 to 50 letters, digits, `.`, `_`, `-`.
    pub username: String,
    /// At least 8 characters.
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
    /// The tokens.
    #[serde(flatten)]
    pub tokens: Tokens,
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Login name (any case).
    pub username: String,
    /// Password.
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
    /// The new password, at least 8 characters.
    pub new_password: String,
}

/// `GET /auth/me`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The caller's id.
    pub user_id: Uuid,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
}

/// One item of `POST /auth/credentials`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// A user created through `POST /users`.
    pub user_id: Uuid,
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A created login.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Credential {
    /// The user.
    pub user_id: Uuid,
    /// Login name.
    pub username: String,
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("wrong username or password".into())
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
    let mut errors = Vec::new();
    let username = parse_username(&body.username)
        .map_err(|m| errors.push(FieldError::new("username", m)))
        .ok();
    let password = parse_password(&body.password)
        .map_err(|m| errors.push(FieldError::new("password", m)))
        .ok();
    let (Some(username), Some(password)) = (username, password) else {
        return Err(ApiError::validation(errors));
    };
    if store::credential_by_username(&state.db, &username)
        .await?
        .is_some()
    {
        return Err(username_taken());
    }
    let hash = state.hasher.hash(password).await?;
    let user_id = Uuid::now_v7();
    let profile = state
        .users
        .register(&json!({
            "user_id": user_id,
            "name": body.name,
            "email": body.email,
            "phone": body.phone,
            "address": body.address,
        }))
        .await?;
    let stored = store::insert_credentials(
        &state.db,
        vec![store::new_credential(user_id, username, hash)],
    )
    .await;
    if let Err(err) = stored {
        // Nothing may be left behind: the profile goes again.
        if let Err(undo) = state.users.unregister(user_id).await {
            tracing::error!(%user_id, error = %undo, "could not remove the profile of a failed registration");
        }
        return Err(
            match platform::error::violated_constraint(&err).as_deref() {
                Some("user_auth_username_key") => username_taken(),
                _ => err.into(),
            },
        );
    }
    let tokens = tokens::issue_pair(&state, user_id, Role::Customer).await?;
    metrics::counter!("auth_registrations_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            user: profile,
            tokens,
        }),
    ))
}

fn username_taken() -> ApiError {
    ApiError::Conflict {
        detail: "that username is taken".into(),
        errors: vec![FieldError::new("username", "is taken")],
        allowed: None,
    }
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
    let started_ms = chrono::Utc::now().timestamp_millis();
    let user_key = format!("user:{}", body.username.trim().to_lowercase());
    let client_key = format!("client:{}", client_ip(&headers, connected.map(|c| c.0.0)));
    let limits = &state.login_limits;
    // Every attempt on a username counts before its password is checked, so
    // twenty wrong passwords at once get five 401s and fifteen 429s.
    state.limiter.attempt(&user_key, limits.per_user).await?;

    let credential = store::credential_by_username(&state.db, body.username.trim()).await?;
    let password = SecretString::from(body.password);
    let matched = state
        .hasher
        .verify(
            password,
            credential.as_ref().map(|c| c.password_hash.clone()),
        )
        .await;
    let credential = match credential {
        Some(credential) if matched => credential,
        _ => {
            metrics::counter!("auth_logins_failed_total").increment(1);
            // Failures from one address across usernames: counted first too,
            // but only wrong passwords are refused by it, so people sharing an
            // address never lose a correct login to someone else's failures.
            state
                .limiter
                .attempt(&client_key, limits.per_client)
                .await?;
            return Err(invalid_credentials());
        }
    };
    state.limiter.reset(&user_key).await?;
    let profile = state
        .users
        .profile(credential.user_id)
        .await?
        .ok_or_else(invalid_credentials)?;
    let issued = tokens::issue_pair(&state, credential.user_id, profile.role).await?;
    let issued =
        tokens::unless_revoked_since(&state, credential.user_id, started_ms, issued).await?;
    metrics::counter!("auth_logins_total").increment(1);
    Ok(Json(issued))
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
    let refused =
        || ApiError::Unauthorized("the refresh token is unknown, expired or spent".into());
    let token_id: Uuid = body.refresh_token.trim().parse().map_err(|_| refused())?;
    // The role is read before the row is locked: no remote call under a lock.
    let (owner, issued_at) = store::refresh_token_owner(&state.db, token_id)
        .await?
        .ok_or_else(refused)?;
    let profile = state.users.profile(owner).await?.ok_or_else(refused)?;
    match store::rotate_refresh_token(&state.db, token_id, state.policy.refresh_ttl).await? {
        Rotation::Rotated {
            user_id,
            token_id,
            family_id,
        } => {
            let issued = tokens::pair(&state, user_id, profile.role, token_id, family_id)?;
            // Since the presented token was issued: every revocation of the
            // user after that (a role change in the users service too, which
            // cannot delete auth's rows) ends this session.
            let since_ms = issued_at.timestamp_millis();
            Ok(Json(
                tokens::unless_revoked_since(&state, user_id, since_ms, issued).await?,
            ))
        }
        Rotation::Reused { user_id, family_id } => {
            tracing::warn!(%user_id, "a spent refresh token was presented again; its session is revoked");
            metrics::counter!("auth_refresh_reuse_total").increment(1);
            // The access tokens of the session go with its refresh tokens:
            // one of them may be in the hands of whoever replayed the token.
            let until = chrono::Utc::now().timestamp() + state.policy.access_ttl.num_seconds();
            revocation::revoke_token(&state.redis, state.verifier.revocations(), family_id, until)
                .await
                .map_err(|err| {
                    ApiError::ServiceUnavailable(format!("could not revoke the session: {err}"))
                })?;
            Err(refused())
        }
        Rotation::Invalid => Err(refused()),
    }
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
    if let Some(raw) = logout.refresh_token {
        let token_id: Uuid = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("refresh_token", "is not a refresh token"))?;
        store::delete_family(&state.db, token_id, caller.user_id).await?;
    }
    revocation::revoke_token(
        &state.redis,
        state.verifier.revocations(),
        caller.claims.jti,
        caller.claims.exp,
    )
    .await
    .map_err(|err| ApiError::ServiceUnavailable(format!("could not revoke the token: {err}")))?;
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
    revoke_everything(&state, caller.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of `user_id`. The revocation comes first: a sign-in in
/// flight that stores its refresh token after the deletion below then sees
/// the revocation and closes its session again (`unless_revoked_since`).
async fn revoke_everything(state: &AppState, user_id: Uuid) -> ApiResult<()> {
    revocation::revoke_user(&state.redis, state.verifier.revocations(), user_id)
        .await
        .map_err(|err| ApiError::ServiceUnavailable(format!("could not revoke tokens: {err}")))?;
    store::delete_user_tokens(&state.db, user_id).await?;
    Ok(())
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
    let new_password =
        parse_password(&body.new_password).map_err(|m| ApiError::invalid("new_password", m))?;
    let credential = store::credential(&state.db, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this user has no login".into()))?;
    let matched = state
        .hasher
        .verify(
            SecretString::from(body.current_password),
            Some(credential.password_hash),
        )
        .await;
    if !matched {
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    let hash = state.hasher.hash(new_password).await?;
    store::set_password_hash(&state.db, caller.user_id, hash).await?;
    revoke_everything(&state, caller.user_id).await?;
    // The caller's own tokens went with the rest: a new session, issued after
    // the revocation, keeps it signed in. A revocation covers every token
    // issued up to its millisecond, so the new one must come from a later one.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let profile = state
        .users
        .profile(caller.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this user has no profile".into()))?;
    Ok(Json(
        tokens::issue_pair(&state, caller.user_id, profile.role).await?,
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
    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let username = parse_username(&item.username)
            .map_err(|m| errors.push(FieldError::new("username", m).at(index)))
            .ok();
        let password = parse_password(&item.password)
            .map_err(|m| errors.push(FieldError::new("password", m).at(index)))
            .ok();
        if let (Some(username), Some(password)) = (username, password) {
            parsed.push((item.user_id, username, password));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let conflicts = crate::rules::conflicts_within(&parsed);
    if !conflicts.is_empty() {
        return Err(ApiError::Conflict {
            detail: "the batch repeats a username or user; nothing was created".into(),
            errors: conflicts,
            allowed: None,
        });
    }
    let ids: Vec<Uuid> = parsed.iter().map(|(id, _, _)| *id).collect();
    let missing = state.users.missing(&ids).await?;
    if !missing.is_empty() {
        let errors = crate::rules::indexes_of(&ids, &missing, "user_id", "no such user");
        return Err(ApiError::validation(errors));
    }
    let lowered: Vec<String> = parsed.iter().map(|(_, u, _)| u.to_lowercase()).collect();
    let taken = store::taken_usernames(&state.db, &lowered).await?;
    let with_login = store::users_with_credentials(&state.db, &ids).await?;
    let mut conflicts = Vec::new();
    for (index, (id, name)) in ids.iter().zip(&lowered).enumerate() {
        if taken.contains(name) {
            conflicts.push(FieldError::new("username", "is taken").at(index));
        }
        if with_login.contains(id) {
            conflicts.push(FieldError::new("user_id", "already has a login").at(index));
        }
    }
    if !conflicts.is_empty() {
        return Err(ApiError::Conflict {
            detail: "a username is taken or a user already has a login; nothing was created".into(),
            errors: conflicts,
            allowed: None,
        });
    }
    // One hash per core at a time: bcrypt is the whole cost of this call.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let passwords: Vec<SecretString> = parsed.iter().map(|(_, _, p)| p.clone()).collect();
    let hasher = state.hasher.clone();
    let hashes: Vec<String> = futures::stream::iter(passwords)
        .map(move |password| {
            let hasher = hasher.clone();
            async move { hasher.hash(password).await }
        })
        .buffered(parallel)
        .try_collect()
        .await?;
    let mut rows = Vec::with_capacity(parsed.len());
    let mut created = Vec::with_capacity(parsed.len());
    for ((user_id, username, _), hash) in parsed.into_iter().zip(hashes) {
        created.push(Credential {
            user_id,
            username: username.clone(),
        });
        rows.push(store::new_credential(user_id, username, hash));
    }
    store::insert_credentials(&state.db, rows)
        .await
        .map_err(
            |err| match platform::error::violated_constraint(&err).as_deref() {
                Some("user_auth_username_key") | Some("user_auth_pkey") => ApiError::conflict(
                    "a username or login was taken meanwhile; nothing was created",
                ),
                _ => err.into(),
            },
        )?;
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

/// The login limits.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failed logins per username per window.
    pub per_user: Limit,
    /// Failed logins per client address per window.
    pub per_client: Limit,
}
