//! bcrypt hashing and checking, always on the blocking pool so the async
//! workers keep serving while a hash takes its quarter second.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

/// Hashes and checks passwords at one cost.
#[derive(Clone, Debug)]
pub struct Hasher {
    cost: u32,
    // A hash of nothing anyone knows: an unknown user is checked against it
    // so that it costs as much as a wrong password and answers the same.
    dummy: Arc<OnceCell<String>>,
}

impl Hasher {
    /// A hasher at bcrypt `cost` (4 to 31).
    pub fn new(cost: u32) -> Self {
        Self {
            cost: cost.clamp(4, 31),
            dummy: Arc::default(),
        }
    }

    /// The bcrypt cost in use.
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Hashes `password`.
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let cost = self.cost;
        let hash =
            tokio::task::spawn_blocking(move || bcrypt::hash(password.expose_secret(), cost))
                .await??;
        Ok(hash)
    }

    /// True when `password` matches `hash`; with no hash (unknown user) it
    /// spends the same time against a dummy and answers false.
    pub async fn verify(&self, password: SecretString, hash: Option<String>) -> bool {
        let known = hash.is_some();
        let hash = match hash {
            Some(hash) => hash,
            None => match self.dummy().await {
                Ok(dummy) => dummy,
                Err(_) => return false,
            },
        };
        let matched = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password.expose_secret(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        known && matched
    }

    async fn dummy(&self) -> anyhow::Result<String> {
        let cost = self.cost;
        self.dummy
            .get_or_try_init(|| async move {
                let secret = SecretString::from(uuid::Uuid::new_v4().to_string());
                let hash =
                    tokio::task::spawn_blocking(move || bcrypt::hash(secret.expose_secret(), cost))
                        .await??;
                anyhow::Ok(hash)
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = Hasher::new(4);
        let hash = hasher
            .hash(SecretString::from("correct horse"))
            .await
            .expect("hash");
        assert!(
            hasher
                .verify(SecretString::from("correct horse"), Some(hash.clone()))
                .await
        );
        assert!(
            !hasher
                .verify(SecretString::from("wrong horse"), Some(hash))
                .await
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = Hasher::new(4);
        assert!(!hasher.verify(SecretString::from("anything"), None).await);
    }
}
