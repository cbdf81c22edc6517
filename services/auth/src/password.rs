//! bcrypt hashing and checking, always on the blocking pool so the async
//! workers keep serving while a hash takes its quarter second.
//!
//! bcrypt reads at most 72 bytes and stops at a NUL: 72 bytes are only 18
//! characters of some scripts. So new hashes are bcrypt over the password's
//! SHA-256 (in base64: 44 bytes, no NUL), marked by a prefix; hashes stored
//! before that (plain bcrypt) keep verifying as they were made.
//!
//! At most one hash per core runs at once; the rest wait their turn, so a
//! burst of logins or registrations queues instead of filling the blocking
//! pool and starving everything else of CPU.

use std::sync::Arc;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, Semaphore};

/// Marks a hash made over the password's SHA-256.
const PREHASHED: &str = "$sha256$";

/// What bcrypt is given for `password` in a new hash.
fn prehash(password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(password.as_bytes()))
}

/// Hashes and checks passwords at one cost.
#[derive(Clone, Debug)]
pub struct Hasher {
    cost: u32,
    running: Arc<Semaphore>,
    // A hash of nothing anyone knows: an unknown user is checked against it
    // so that it costs as much as a wrong password and answers the same.
    dummy: Arc<OnceCell<String>>,
}

impl Hasher {
    /// A hasher at bcrypt `cost` (4 to 31).
    pub fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            cost: cost.clamp(4, 31),
            running: Arc::new(Semaphore::new(cores)),
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
        let _turn = self.running.acquire().await?;
        let hash = tokio::task::spawn_blocking(move || {
            bcrypt::hash(prehash(password.expose_secret()), cost)
        })
        .await??;
        Ok(format!("{PREHASHED}{hash}"))
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
        let Ok(_turn) = self.running.acquire().await else {
            return false;
        };
        let matched = tokio::task::spawn_blocking(move || {
            let password = password.expose_secret();
            match hash.strip_prefix(PREHASHED) {
                Some(bcrypt_hash) => bcrypt::verify(prehash(password), bcrypt_hash),
                None => bcrypt::verify(password, &hash),
            }
            .unwrap_or(false)
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
    async fn every_character_of_a_long_password_counts() {
        let hasher = Hasher::new(4);
        // 64 characters of 3 bytes each: bcrypt alone would read only 24 of them.
        let long = "密".repeat(64);
        let hash = hasher
            .hash(SecretString::from(long.clone()))
            .await
            .expect("hash");
        assert!(
            hasher
                .verify(SecretString::from(long.clone()), Some(hash.clone()))
                .await
        );
        let mut changed = long.clone();
        changed.pop();
        changed.push('码');
        assert!(!hasher.verify(SecretString::from(changed), Some(hash)).await);
    }

    #[tokio::test]
    async fn hashes_made_before_the_prehash_keep_verifying() {
        let hasher = Hasher::new(4);
        let legacy = bcrypt::hash("an old password", 4).expect("hash");
        assert!(
            hasher
                .verify(SecretString::from("an old password"), Some(legacy.clone()))
                .await
        );
        assert!(
            !hasher
                .verify(SecretString::from("another"), Some(legacy))
                .await
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = Hasher::new(4);
        assert!(!hasher.verify(SecretString::from("anything"), None).await);
    }
}
