//! Accounts: self-registration (the profile in the users service, then the
//! login here, the profile removed again if the login cannot be stored), and
//! logins given in bulk to users an admin created.

use futures::{StreamExt, TryStreamExt};
use platform::auth::Role;
use platform::error::{InStep, OnConstraint};
use platform::{ApiError, ApiResult, FieldError};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::domain::{Username, parse_password};
use crate::http::{Credential, NewCredential, Register};
use crate::store;
use crate::tokens::{self, Tokens};

/// Registers `body`: its profile and its first token pair.
pub async fn register(state: &AppState, body: Register) -> ApiResult<(Value, Tokens)> {
    let mut errors = Vec::new();
    let username = Username::parse(&body.username)
        .map_err(|m| errors.push(FieldError::new("username", m)))
        .ok();
    let password = parse_password(&body.password)
        .map_err(|m| errors.push(FieldError::new("password", m)))
        .ok();
    let (Some(username), Some(password)) = (username, password) else {
        return Err(ApiError::validation(errors));
    };
    if store::credential_by_username(&state.db, username.as_str())
        .await
        .in_step("look the username up")?
        .is_some()
    {
        return Err(username_taken());
    }
    let hash = state
        .hasher
        .hash(password)
        .await
        .in_step("hash the password")?;
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
        .await
        .in_step("create the profile")?;
    let stored = store::insert_credentials(
        &state.db,
        vec![store::new_credential(user_id, username.into_string(), hash)],
    )
    .await
    .on_constraint(&[store::USERNAME_TAKEN], username_taken)
    .in_step("store the login");
    if let Err(err) = stored {
        // Nothing may be left behind: the profile goes again.
        if let Err(undo) = state.users.unregister(user_id).await {
            tracing::error!(%user_id, error = %undo, "could not remove the profile of a failed registration");
        }
        return Err(err);
    }
    let tokens = tokens::issue_pair(state, user_id, Role::Customer)
        .await
        .in_step("issue the first tokens")?;
    metrics::counter!("auth_registrations_total").increment(1);
    Ok((profile, tokens))
}

fn username_taken() -> ApiError {
    ApiError::Conflict {
        detail: "that username is taken".into(),
        errors: vec![FieldError::new("username", "is taken")],
        allowed: None,
    }
}

/// Gives each item's user a login, all or none.
pub async fn create_credentials(
    state: &AppState,
    items: &[NewCredential],
) -> ApiResult<Vec<Credential>> {
    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let username = Username::parse(&item.username)
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
    let lowered: Vec<String> = parsed
        .iter()
        .map(|(_, u, _)| u.as_str().to_lowercase())
        .collect();
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
            username: username.as_str().to_owned(),
        });
        rows.push(store::new_credential(user_id, username.into_string(), hash));
    }
    store::insert_credentials(&state.db, rows)
        .await
        .on_constraint(&[store::USERNAME_TAKEN, store::LOGIN_EXISTS], || {
            ApiError::conflict("a username or login was taken meanwhile; nothing was created")
        })?;
    Ok(created)
}
