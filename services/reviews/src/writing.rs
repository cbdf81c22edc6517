//! Writing, editing and deleting reviews. Each change commits with the
//! `review.*` event that products keeps its ratings from (the outbox).

use chrono::{SubsecRound, Utc};
use events::{Envelope, Event, ReviewChanged};
use platform::auth::{AuthUser, Role};
use platform::error::{InStep, OnConstraint};
use platform::{ApiError, ApiResult};
use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::domain::{self, NewReview};
use crate::entity::Model;
use crate::store;

/// What a `review.*` event says of `review` at `version`.
pub(crate) fn changed(review: &Model, version: i32) -> ReviewChanged {
    ReviewChanged {
        review_id: review.review_id,
        product_id: review.product_id,
        user_id: review.user_id,
        rating: review.rating,
        version,
    }
}

pub(crate) fn not_found(review_id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no review with id {review_id}"))
}

fn gone_user() -> ApiError {
    ApiError::Unauthorized("this user no longer exists".into())
}

/// Commits `txn` with `event` in the outbox, wakes the relay, and drops
/// the cached pages of the product, before the caller is answered.
async fn commit_with(
    state: &AppState,
    txn: DatabaseTransaction,
    product_id: Uuid,
    event: Event,
) -> ApiResult<()> {
    state
        .outbox
        .enqueue(&txn, &[Envelope::new(crate::NAME, event)])
        .await?;
    txn.commit().await?;
    state.outbox.notify();
    crate::reading::changed(&state.pages, product_id).await;
    Ok(())
}

/// The caller's name as the projection knows it, asking the users service
/// (and remembering the answer) when no `user.*` event has arrived yet.
async fn author_name(
    state: &AppState,
    txn: &DatabaseTransaction,
    user_id: Uuid,
) -> ApiResult<String> {
    match store::author(txn, user_id).await? {
        Some(author) if author.deleted => Err(gone_user()),
        Some(author) => Ok(author.name),
        None => {
            let (name, as_of) = state.users.name_of(user_id).await?.ok_or_else(gone_user)?;
            store::record_author(txn, user_id, &name, as_of).await?;
            Ok(name)
        }
    }
}

/// Refuses a product that is unknown or deleted. The catalogue answers
/// (its events may lag behind a deletion); while it is away, what the
/// projection heard from its events does, when it heard of the product.
async fn ensure_reviewable(state: &AppState, product_id: Uuid) -> ApiResult<()> {
    let live = match state.products.exists(product_id).await {
        Ok(live) => live,
        Err(ApiError::ServiceUnavailable(why)) => {
            match store::product_deleted(&state.db, product_id).await? {
                Some(deleted) => !deleted,
                None => return Err(ApiError::ServiceUnavailable(why)),
            }
        }
        Err(other) => return Err(other),
    };
    if live {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no product with id {product_id}"
        )))
    }
}

/// `caller` reviews `product_id`: one review per user and product.
pub async fn write(
    state: &AppState,
    caller: &AuthUser,
    product_id: Uuid,
    review: NewReview,
) -> ApiResult<Model> {
    ensure_reviewable(state, product_id)
        .await
        .in_step("ask the catalogue")?;
    let txn = state.db.begin().await?;
    store::lock_user(&txn, caller.user_id).await?;
    let author_name = author_name(state, &txn, caller.user_id)
        .await
        .in_step("name the author")?;
    let verified_purchase = store::has_bought(&txn, caller.user_id, product_id)
        .await
        .in_step("look the purchase up")?;
    // Postgres keeps microseconds: answer with what a read will show.
    let now = Utc::now().trunc_subsecs(6);
    let written = store::insert(
        &txn,
        Model {
            review_id: Uuid::now_v7(),
            product_id,
            user_id: caller.user_id,
            author_name,
            rating: review.rating.stars(),
            title: review.title.as_str().to_owned(),
            body: review.body.as_str().to_owned(),
            verified_purchase,
            version: 1,
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .on_constraint(&[store::ONE_PER_USER_AND_PRODUCT], || {
        ApiError::conflict("you have already reviewed this product; edit that review instead")
    })
    .in_step("write the review")?;
    let event = Event::ReviewCreated(changed(&written, 1));
    commit_with(state, txn, product_id, event).await?;
    Ok(written)
}

/// The author changes the text of a review, if it is still at the version
/// they read. Whose review it is is checked before the body is: nobody else
/// learns anything from the answer about what an edit looks like.
pub async fn edit(
    state: &AppState,
    caller: &AuthUser,
    review_id: Uuid,
    if_match: Option<&str>,
    body: &Value,
) -> ApiResult<Model> {
    let txn = state.db.begin().await?;
    let review = store::find_for_update(&txn, review_id)
        .await?
        .ok_or_else(|| not_found(review_id))?;
    if review.user_id != caller.user_id {
        return Err(ApiError::Forbidden(
            "only its author may edit a review".into(),
        ));
    }
    let edit = domain::parse_text_edit(body)?;
    let expected = platform::versioning::expected_version(if_match, edit.version)?;
    if expected != review.version {
        return Err(ApiError::PreconditionFailed(format!(
            "the review is at version {}, not {expected}; read it again",
            review.version
        )));
    }
    let title = edit
        .title
        .as_ref()
        .map_or(review.title.as_str(), |t| t.as_str());
    let text = edit
        .body
        .as_ref()
        .map_or(review.body.as_str(), |b| b.as_str());
    let edited = store::update_text(&txn, &review, title, text).await?;
    let event = Event::ReviewUpdated(changed(&edited, edited.version));
    commit_with(state, txn, edited.product_id, event).await?;
    Ok(edited)
}

/// The author or an admin deletes a review.
pub async fn delete(state: &AppState, caller: &AuthUser, review_id: Uuid) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let review = store::find_for_update(&txn, review_id)
        .await?
        .ok_or_else(|| not_found(review_id))?;
    if !caller.is_self_or(review.user_id, &[Role::Admin]) {
        return Err(ApiError::Forbidden(
            "only its author or an admin may delete a review".into(),
        ));
    }
    store::delete(&txn, review_id).await?;
    // The deletion outranks every earlier event of the review, wherever it lands.
    let event = Event::ReviewDeleted(changed(&review, review.version + 1));
    commit_with(state, txn, review.product_id, event).await
}
