//! Changing the catalogue: products created in bulk (every item checked,
//! each SKU once), one edited under optimistic locking, one deleted; every
//! change reaches the caches before it is answered.

use platform::error::{InStep, OnConstraint};
use platform::money::Currency;
use platform::{ApiError, ApiResult, FieldError};
use uuid::Uuid;

use crate::AppState;
use crate::domain::{self, NewProduct, ProductChanges, RawProduct, Sku};
use crate::entity::product::Model;
use crate::http::{NewProductBody, ProductPatch, cache_record, not_found};
use crate::store::{self, UpdateRefused};
use platform::error::FieldErrors;

/// Creates every item or none; 422 names each invalid item, 409 each repeated SKU.
pub async fn create(state: &AppState, items: &[NewProductBody]) -> ApiResult<Vec<Model>> {
    let mut products = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match NewProduct::parse(RawProduct {
            sku: &item.sku,
            name: &item.name,
            description: &item.description,
            price_cents: item.price_cents,
            currency: &item.currency,
            stock: item.stock,
            category: &item.category,
            tags: &item.tags,
            attributes: item.attributes.as_ref(),
        }) {
            Ok(product) => products.push(product),
            Err(failures) => errors.extend(failures.into_iter().map(|err| err.at(index))),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut first_seen = std::collections::HashMap::new();
    let duplicates: Vec<FieldError> = products
        .iter()
        .enumerate()
        .filter_map(|(index, p)| match first_seen.get(p.sku().as_str()) {
            Some(first) => Some(FieldError::new("sku", format!("repeats item {first}")).at(index)),
            None => {
                first_seen.insert(p.sku().as_str(), index);
                None
            }
        })
        .collect();
    if !duplicates.is_empty() {
        return Err(ApiError::Conflict {
            detail: "the same SKU appears more than once; nothing was created".into(),
            errors: duplicates,
            allowed: None,
        });
    }
    let created = store::create(&state.db, &state.outbox, products)
        .await
        .on_constraint(&[store::SKU_TAKEN], || skus_taken(Vec::new()))
        .in_step("store the new products")?
        .map_err(|taken| skus_taken(taken.0))?;
    state.lists.invalidate().await;
    state
        .cache
        .put_many(&created.iter().map(cache_record).collect::<Vec<_>>())
        .await;
    Ok(created)
}

/// A 409 naming each item (index, SKU) whose SKU a live product has; none
/// when a concurrent request took it.
fn skus_taken(taken: Vec<(usize, String)>) -> ApiError {
    ApiError::Conflict {
        detail: "a SKU is already in the catalogue; nothing was created".into(),
        errors: taken
            .into_iter()
            .map(|(index, sku)| {
                FieldError::new("sku", format!("{sku} is already in use")).at(index)
            })
            .collect(),
        allowed: None,
    }
}

/// Applies `patch` to product `id` if it is still at version `expected`.
pub async fn update(
    state: &AppState,
    id: Uuid,
    expected: i32,
    patch: &ProductPatch,
) -> ApiResult<Model> {
    let mut e = FieldErrors::default();
    let changes = ProductChanges {
        sku: patch
            .sku
            .as_deref()
            .and_then(|v| e.check("sku", Sku::parse(v))),
        name: patch
            .name
            .as_deref()
            .and_then(|v| e.check("name", domain::parse_name(v))),
        description: patch
            .description
            .as_deref()
            .and_then(|v| e.check("description", domain::parse_description(v))),
        price_cents: patch
            .price_cents
            .and_then(|v| e.check("price_cents", domain::parse_price(v))),
        currency: patch
            .currency
            .as_deref()
            .and_then(|v| e.check("currency", Currency::parse(v))),
        stock: patch
            .stock
            .and_then(|v| e.check("stock", domain::parse_stock(v))),
        category: patch
            .category
            .as_deref()
            .and_then(|v| e.check("category", domain::parse_category(v))),
        tags: patch
            .tags
            .as_deref()
            .and_then(|v| e.check("tags", domain::parse_tags(v))),
        attributes: patch
            .attributes
            .as_ref()
            .and_then(|v| e.check("attributes", domain::parse_attributes(v))),
    };
    if !e.0.is_empty() {
        return Err(ApiError::validation(e.0));
    }
    if changes.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "name at least one field to change",
        ));
    }
    let updated = store::update(&state.db, &state.outbox, id, expected, changes)
        .await
        .on_constraint(&[store::SKU_TAKEN], || ApiError::Conflict {
            detail: "that SKU is already in use".into(),
            errors: vec![FieldError::new("sku", "is already in use")],
            allowed: None,
        })
        .in_step("store the changes")?;
    match updated {
        Ok(updated) => {
            state.lists.invalidate().await;
            let record = cache_record(&updated);
            state
                .cache
                .replace_many(std::slice::from_ref(&record))
                .await;
            Ok(updated)
        }
        Err(UpdateRefused::NotFound) => Err(not_found(id)),
        Err(UpdateRefused::Stale { current }) => Err(ApiError::PreconditionFailed(format!(
            "the product is at version {current}, not {expected}; read it again"
        ))),
    }
}

/// Deletes product `id`: it leaves lists, searches and the cache.
pub async fn delete(state: &AppState, id: Uuid) -> ApiResult<()> {
    store::delete(&state.db, &state.outbox, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    state.cache.put_gone(&[id]).await;
    state.lists.invalidate().await;
    Ok(())
}
