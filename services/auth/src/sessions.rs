//! Sessions: signing in (limits counted before the password is checked),
//! refresh-token rotation (a reuse ends the session), logging out, and
//! password changes; every one ends what a revocation since its start covers.

use platform::auth::AuthUser;
use platform::revocation;
use platform::{ApiError, ApiResult};
use secrecy::SecretString;
use uuid::Uuid;

use crate::AppState;
use crate::domain::parse_password;
use crate::http::{ChangePassword, Login};
use crate::store::{self, Rotation};
use crate::tokens::{self, Tokens};

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("wrong username or password".into())
}

/// Signs `body` in from `client` (its address, for the per-client limit).
pub async fn login(state: &AppState, body: Login, client: &str) -> ApiResult<Tokens> {
    let started_ms = chrono::Utc::now().timestamp_millis();
    let user_key = format!("user:{}", body.username.trim().to_lowercase());
    let client_key = format!("client:{client}");
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
    let issued = tokens::issue_pair(state, credential.user_id, profile.role).await?;
    let issued =
        tokens::unless_revoked_since(state, credential.user_id, started_ms, issued).await?;
    metrics::counter!("auth_logins_total").increment(1);
    Ok(issued)
}

/// A new pair for `refresh_token`, which is spent.
pub async fn refresh(state: &AppState, refresh_token: &str) -> ApiResult<Tokens> {
    let refused =
        || ApiError::Unauthorized("the refresh token is unknown, expired or spent".into());
    let token_id: Uuid = refresh_token.trim().parse().map_err(|_| refused())?;
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
            let issued = tokens::pair(state, user_id, profile.role, token_id, family_id)?;
            // Since the presented token was issued: every revocation of the
            // user after that (a role change in the users service too, which
            // cannot delete auth's rows) ends this session.
            let since_ms = issued_at.timestamp_millis();
            tokens::unless_revoked_since(state, user_id, since_ms, issued).await
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

/// Ends the caller's session: its access token and, if given, its refresh token's family.
pub async fn logout(
    state: &AppState,
    caller: &AuthUser,
    refresh_token: Option<&str>,
) -> ApiResult<()> {
    if let Some(raw) = refresh_token {
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
    Ok(())
}

/// Ends every session of `user_id`. The revocation comes first: a sign-in in
/// flight that stores its refresh token after the deletion below then sees
/// the revocation and closes its session again (`unless_revoked_since`).
pub async fn revoke_everything(state: &AppState, user_id: Uuid) -> ApiResult<()> {
    revocation::revoke_user(&state.redis, state.verifier.revocations(), user_id)
        .await
        .map_err(|err| ApiError::ServiceUnavailable(format!("could not revoke tokens: {err}")))?;
    store::delete_user_tokens(&state.db, user_id).await?;
    Ok(())
}

/// Changes the caller's password, ends every session, and answers a fresh pair.
pub async fn change_password(
    state: &AppState,
    caller: &AuthUser,
    body: ChangePassword,
) -> ApiResult<Tokens> {
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
    revoke_everything(state, caller.user_id).await?;
    // The caller's own tokens went with the rest: a new session, issued after
    // the revocation, keeps it signed in. A revocation covers every token
    // issued up to its millisecond, so the new one must come from a later one.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let profile = state
        .users
        .profile(caller.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this user has no profile".into()))?;
    tokens::issue_pair(state, caller.user_id, profile.role).await
}
