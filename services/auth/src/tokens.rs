//! Issuing a token pair: a short-lived signed JWT and a rotating refresh token.

use chrono::Duration;
use platform::ApiError;
use platform::auth::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::store;

/// What a login, registration or refresh answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Tokens {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Exchange at `POST /auth/refresh` for a new pair; single use.
    pub refresh_token: Uuid,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// Lifetimes and claims of issued tokens.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// Access token lifetime.
    pub access_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
}

/// Signs an access token for `user_id` as `role` in login session `session`.
pub fn access_token(
    state: &AppState,
    user_id: Uuid,
    role: Role,
    session: Uuid,
) -> Result<String, ApiError> {
    let policy = &state.policy;
    state
        .keys
        .signer()
        .mint_in_session(
            user_id,
            role,
            Some(session),
            &policy.issuer,
            &policy.audience,
            policy.access_ttl.num_seconds(),
        )
        .map(|(token, _)| token)
        .map_err(ApiError::Internal)
}

/// A fresh pair for a new login (a new refresh-token family).
pub async fn issue_pair(state: &AppState, user_id: Uuid, role: Role) -> Result<Tokens, ApiError> {
    let session = Uuid::now_v7();
    let refresh =
        store::issue_refresh_token(&state.db, user_id, session, state.policy.refresh_ttl).await?;
    pair(state, user_id, role, refresh, session)
}

/// A pair made of a new access token and the given refresh token of `session`.
pub fn pair(
    state: &AppState,
    user_id: Uuid,
    role: Role,
    refresh: Uuid,
    session: Uuid,
) -> Result<Tokens, ApiError> {
    Ok(Tokens {
        access_token: access_token(state, user_id, role, session)?,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: state.policy.access_ttl.num_seconds(),
    })
}

/// Hands `tokens` out unless the user's sessions were revoked (a password
/// change, logout-all, a role change, a deletion) at or after `since_ms`:
/// when the login that made them began, or when the refresh token a refresh
/// spent was issued. What it relied on (the password, the role, the old
/// session) may be stale then, so the session is closed again. A revocation
/// after this check covers these tokens itself: it is later than their
/// issue, and the refresh tokens it deletes include this one.
pub async fn unless_revoked_since(
    state: &AppState,
    user_id: Uuid,
    since_ms: i64,
    tokens: Tokens,
) -> Result<Tokens, ApiError> {
    match platform::revocation::user_revoked_at(&state.redis, user_id).await {
        Ok(Some(at_ms)) if at_ms >= since_ms => {
            store::delete_family(&state.db, tokens.refresh_token, user_id).await?;
            Err(ApiError::Unauthorized(
                "this account's sessions were ended while signing in; sign in again".into(),
            ))
        }
        Ok(_) => Ok(tokens),
        Err(err) => {
            // Without Redis no revocation can be published either: sign-ins go on.
            tracing::warn!(%err, "cannot check for a revocation during sign-in; Redis unavailable");
            Ok(tokens)
        }
    }
}
