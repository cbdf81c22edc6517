//! Bulk-credential rules that need no I/O.

use std::collections::HashMap;

use platform::FieldError;
use secrecy::SecretString;
use uuid::Uuid;

use crate::domain::Username;

/// Items that repeat an earlier item's username (any case) or user.
pub fn conflicts_within(items: &[(Uuid, Username, SecretString)]) -> Vec<FieldError> {
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut users: HashMap<Uuid, usize> = HashMap::new();
    let mut errors = Vec::new();
    for (index, (user_id, username, _)) in items.iter().enumerate() {
        if let Some(first) = names.get(&username.as_str().to_lowercase()) {
            errors.push(FieldError::new("username", format!("repeats item {first}")).at(index));
        } else {
            names.insert(username.as_str().to_lowercase(), index);
        }
        if let Some(first) = users.get(user_id) {
            errors.push(FieldError::new("user_id", format!("repeats item {first}")).at(index));
        } else {
            users.insert(*user_id, index);
        }
    }
    errors
}

/// A field error at every index of `ids` whose id is in `wanted`.
pub fn indexes_of(ids: &[Uuid], wanted: &[Uuid], field: &str, message: &str) -> Vec<FieldError> {
    ids.iter()
        .enumerate()
        .filter(|(_, id)| wanted.contains(id))
        .map(|(index, _)| FieldError::new(field, message).at(index))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> Username {
        Username::parse(raw).expect("a valid username")
    }

    #[test]
    fn repeats_are_named_at_the_later_item() {
        let a = Uuid::now_v7();
        let secret = || SecretString::from("password1");
        let items = vec![
            (a, name("Ada"), secret()),
            (Uuid::now_v7(), name("ada"), secret()),
            (a, name("other"), secret()),
        ];
        let errors = conflicts_within(&items);
        let at: Vec<(Option<usize>, &str)> =
            errors.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert_eq!(at, vec![(Some(1), "username"), (Some(2), "user_id")]);
    }
}
