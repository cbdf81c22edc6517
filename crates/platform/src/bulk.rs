//! Bulk reads: `?ids=a,b,c` in, `{data, missing}` out; and the rule that a
//! bulk write names each thing once.

use std::collections::HashMap;
use std::hash::Hash;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

/// Most ids one `?ids=` read or delete may name.
pub const MAX_BULK_IDS: usize = 100;

/// The answer to a bulk read: what was found, in the order asked, and what was not.
#[derive(Debug, Serialize, ToSchema)]
pub struct Batch<T> {
    /// The items found.
    pub data: Vec<T>,
    /// The ids that matched nothing.
    pub missing: Vec<Uuid>,
}

impl<T> Batch<T> {
    /// Orders `found` as `ids` asked and lists the ids not found.
    pub fn collect(ids: &[Uuid], mut found: Vec<T>, id_of: impl Fn(&T) -> Uuid) -> Self {
        let mut data = Vec::with_capacity(found.len());
        let mut missing = Vec::new();
        for id in ids {
            match found.iter().position(|item| id_of(item) == *id) {
                Some(at) => data.push(found.swap_remove(at)),
                None => missing.push(*id),
            }
        }
        Self { data, missing }
    }
}

/// Parses `ids=a,b,c` (1 to 100 UUIDs, duplicates folded).
pub fn parse_ids(raw: &str) -> Result<Vec<Uuid>, ApiError> {
    let mut ids = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id = Uuid::parse_str(part)
            .map_err(|_| ApiError::BadRequest(format!("`ids`: `{part}` is not a UUID")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() || ids.len() > MAX_BULK_IDS {
        return Err(ApiError::BadRequest(format!(
            "`ids` must name 1 to {MAX_BULK_IDS} ids"
        )));
    }
    Ok(ids)
}

/// A 422 naming every item of a bulk write whose `field` repeats another's:
/// applying both would change one thing twice (two events, two mails).
pub fn reject_repeats<K: Eq + Hash>(
    keys: impl IntoIterator<Item = K>,
    field: &str,
) -> Result<(), ApiError> {
    let mut at: HashMap<K, Vec<usize>> = HashMap::new();
    for (index, key) in keys.into_iter().enumerate() {
        at.entry(key).or_default().push(index);
    }
    let mut repeated: Vec<Vec<usize>> = at.into_values().filter(|i| i.len() > 1).collect();
    if repeated.is_empty() {
        return Ok(());
    }
    repeated.sort();
    let errors = repeated
        .iter()
        .flat_map(|indexes| {
            indexes.iter().map(move |&index| {
                let others: Vec<String> = indexes
                    .iter()
                    .filter(|&&other| other != index)
                    .map(usize::to_string)
                    .collect();
                FieldError::new(
                    field,
                    format!("repeats item {}; name each once", others.join(", ")),
                )
                .at(index)
            })
        })
        .collect();
    Err(ApiError::validation(errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_422_naming_every_index_involved() {
        assert!(reject_repeats(["a", "b", "c"], "order_id").is_ok());
        let Err(ApiError::Validation { errors, .. }) =
            reject_repeats(["a", "b", "a", "c", "b"], "order_id")
        else {
            panic!("repeats are refused");
        };
        let indexes: Vec<Option<usize>> = errors.iter().map(|e| e.index).collect();
        assert_eq!(indexes, [Some(0), Some(2), Some(1), Some(4)]);
        assert!(errors.iter().all(|e| e.field == "order_id"));
    }

    #[test]
    fn ids_are_parsed_and_deduplicated() {
        let a = Uuid::now_v7();
        let ids = parse_ids(&format!("{a}, {a}")).expect("valid ids");
        assert_eq!(ids, vec![a]);
    }

    #[test]
    fn malformed_or_too_many_ids_are_rejected() {
        assert!(parse_ids("nope").is_err());
        assert!(parse_ids("").is_err());
        let many: Vec<String> = (0..101).map(|_| Uuid::now_v7().to_string()).collect();
        assert!(parse_ids(&many.join(",")).is_err());
    }

    #[test]
    fn batch_keeps_the_requested_order_and_lists_missing_ids() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let batch = Batch::collect(&[c, a, b], vec![a, c], |id| *id);
        assert_eq!(batch.data, vec![c, a]);
        assert_eq!(batch.missing, vec![b]);
    }
}
