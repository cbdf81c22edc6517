//! Changing profiles: bulk creation (every item checked, each address once
//! in the batch and in the shop), edits (the last admin stays an admin, a
//! role change ends the user's sessions), and deletions (never an admin).

use platform::error::OnConstraint;
use platform::{ApiError, ApiResult, FieldError};
use uuid::Uuid;

use crate::AppState;
use crate::domain::{NewProfile, ProfileChanges, RawProfile};
use crate::entity::Model;
use crate::http::NewUser;
use crate::store::{self, UpdateRefused, Updated};

/// Creates a profile for every item, or none.
pub async fn create(state: &AppState, items: &[NewUser]) -> ApiResult<Vec<Model>> {
    let mut profiles = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let raw = RawProfile {
            name: &item.name,
            email: &item.email,
            phone: Some(&item.phone),
            address: Some(&item.address),
            role: item.role,
        };
        match NewProfile::parse(raw) {
            Ok(profile) => profiles.push(profile),
            Err(failures) => errors.extend(failures.into_iter().map(|e| e.at(index))),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let duplicates = duplicate_emails(&profiles);
    if !duplicates.is_empty() {
        return Err(ApiError::Conflict {
            detail: "the same e-mail address appears more than once; nothing was created".into(),
            errors: duplicates,
            allowed: None,
        });
    }
    let profiles = profiles.into_iter().map(|p| (Uuid::now_v7(), p)).collect();
    let created = store::create(&state.db, &state.outbox, profiles)
        .await
        .on_constraint(&[store::EMAIL_TAKEN], || emails_taken(Vec::new()))?
        .map_err(|taken| emails_taken(taken.0))?;
    Ok(created)
}

/// Creates the profile of one registration under `user_id`.
pub async fn create_one(state: &AppState, user_id: Uuid, profile: NewProfile) -> ApiResult<Model> {
    let mut created = store::create(&state.db, &state.outbox, vec![(user_id, profile)])
        .await
        .on_constraint(&[store::EMAIL_TAKEN], email_taken)?
        // A single registration: the index of a bulk body means nothing here.
        .map_err(|_| email_taken())?;
    created
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("insert returned no row")))
}

/// Applies `changes` to user `id`; a changed role ends the user's sessions.
pub async fn update(state: &AppState, id: Uuid, changes: ProfileChanges) -> ApiResult<Updated> {
    let updated = store::update(&state.db, &state.outbox, id, changes)
        .await
        .on_constraint(&[store::EMAIL_TAKEN], email_taken)?
        .map_err(|refused| match refused {
            UpdateRefused::NotFound => ApiError::NotFound(format!("no user with id {id}")),
            UpdateRefused::LastAdmin => ApiError::Conflict {
                detail: "this is the last admin; make another admin first".into(),
                errors: vec![FieldError::new("role", "would leave no admin")],
                allowed: None,
            },
        })?;
    if updated.role_changed {
        // A token never carries a role its user no longer has.
        state.revoke_tokens(&[id]).await;
    }
    Ok(updated)
}

/// Deletes every user in `ids` (no admin among them), or none, and ends their sessions.
pub async fn delete(state: &AppState, ids: &[Uuid]) -> ApiResult<()> {
    store::delete(&state.db, &state.outbox, ids).await??;
    state.revoke_tokens(ids).await;
    Ok(())
}

/// A 409 naming each item (index, address) whose address is registered
/// already; none when a concurrent request took it.
fn emails_taken(taken: Vec<(usize, String)>) -> ApiError {
    ApiError::Conflict {
        detail: "an e-mail address is already registered; nothing was created".into(),
        errors: taken
            .into_iter()
            .map(|(index, email)| {
                FieldError::new("email", format!("{email} is already registered")).at(index)
            })
            .collect(),
        allowed: None,
    }
}

/// A 409 for one profile whose address is registered already.
fn email_taken() -> ApiError {
    ApiError::Conflict {
        detail: "that e-mail address is already registered".into(),
        errors: vec![FieldError::new("email", "is already registered")],
        allowed: None,
    }
}

/// Every item whose e-mail an earlier item of the same batch already has.
fn duplicate_emails(profiles: &[NewProfile]) -> Vec<FieldError> {
    let mut first_seen = std::collections::HashMap::new();
    let mut errors = Vec::new();
    for (index, profile) in profiles.iter().enumerate() {
        if let Some(first) = first_seen.insert(profile.email.as_str(), index) {
            first_seen.insert(profile.email.as_str(), first);
            errors.push(FieldError::new("email", format!("duplicates item {first}")).at(index));
        }
    }
    errors
}
