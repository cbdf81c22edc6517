//! The signing keys: the newest signs, and every key that may still have
//! live tokens is published in the JWK set.
//!
//! In development the keys live in auth's database (generated at first
//! start, so every replica signs with the same key; `shop auth rotate-key`
//! adds a newer one). In production they come from PEM files, the first
//! signing and the others only verifying.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::JwkSet;
use platform::auth::Signer;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryOrder,
    Statement, TransactionTrait,
};
use sha2::{Digest, Sha256};

use crate::entity::signing_key;

/// Advisory lock key that serialises key generation across replicas.
const KEYGEN_LOCK: i64 = 0x5348_4f50_4b45_5953; // "SHOPKEYS"

struct Ring {
    signer: Arc<Signer>,
    jwks: JwkSet,
}

/// The keys in use, reloadable while serving.
pub struct KeyRing {
    ring: RwLock<Ring>,
    files: Vec<PathBuf>,
    access_ttl: Duration,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("files", &self.files)
            .finish()
    }
}

impl KeyRing {
    /// Loads keys from `files` when given, else from the database (creating one if none exists).
    pub async fn load(
        db: &DatabaseConnection,
        files: Vec<PathBuf>,
        access_ttl_secs: i64,
    ) -> anyhow::Result<Self> {
        let access_ttl = Duration::seconds(access_ttl_secs);
        let ring = if files.is_empty() {
            from_database(db, access_ttl).await?
        } else {
            from_files(&files)?
        };
        Ok(Self {
            ring: RwLock::new(ring),
            files,
            access_ttl,
        })
    }

    /// Picks up keys added since (a rotation by another replica or the CLI).
    pub async fn reload(&self, db: &DatabaseConnection) -> anyhow::Result<()> {
        if !self.files.is_empty() {
            return Ok(());
        }
        let ring = from_database(db, self.access_ttl).await?;
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = ring;
        Ok(())
    }

    /// The key that signs new tokens.
    pub fn signer(&self) -> Arc<Signer> {
        self.ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .signer
            .clone()
    }

    /// The public keys of every key whose tokens may still be alive.
    pub fn jwks(&self) -> JwkSet {
        self.ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .jwks
            .clone()
    }
}

/// Adds a new newest key to the database; older keys keep verifying.
pub async fn rotate(db: &DatabaseConnection) -> anyhow::Result<String> {
    let signer = Signer::generate()?;
    insert(db, &signer).await?;
    Ok(signer.kid().to_owned())
}

async fn insert<C: ConnectionTrait>(db: &C, signer: &Signer) -> anyhow::Result<()> {
    signing_key::Entity::insert(signing_key::ActiveModel {
        kid: Set(signer.kid().to_owned()),
        private_key: Set(signer.pkcs8().to_vec()),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

async fn from_database(db: &DatabaseConnection, access_ttl: Duration) -> anyhow::Result<Ring> {
    let txn = db.begin().await?;
    // Two replicas starting together must not each create "the" first key.
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [KEYGEN_LOCK.into()],
    ))
    .await?;
    let mut rows = signing_key::Entity::find()
        .order_by_desc(signing_key::Column::CreatedAt)
        .all(&txn)
        .await?;
    if rows.is_empty() {
        let signer = Signer::generate()?;
        insert(&txn, &signer).await?;
        tracing::info!(kid = signer.kid(), "generated the first signing key");
        rows = signing_key::Entity::find()
            .order_by_desc(signing_key::Column::CreatedAt)
            .all(&txn)
            .await?;
    }
    txn.commit().await?;
    let keys: Vec<(Signer, DateTime<Utc>)> = rows
        .iter()
        .map(|row| {
            Ok((
                Signer::from_pkcs8(row.kid.clone(), &row.private_key)?,
                row.created_at,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(ring_of(keys, access_ttl, Utc::now()))
}

/// The newest key signs; an older key is published while tokens it signed
/// before its successor appeared can still be alive.
fn ring_of(keys: Vec<(Signer, DateTime<Utc>)>, access_ttl: Duration, now: DateTime<Utc>) -> Ring {
    let mut published = Vec::new();
    let mut successor_created: Option<DateTime<Utc>> = None;
    for (signer, created_at) in &keys {
        let live = successor_created.is_none_or(|successor| successor + access_ttl > now);
        if live {
            published.push(signer.jwk());
        }
        successor_created = Some(*created_at);
    }
    let mut keys = keys.into_iter();
    let signer = keys
        .next()
        .map(|(signer, _)| Arc::new(signer))
        .expect("the ring is built from at least one key");
    Ring {
        signer,
        jwks: JwkSet { keys: published },
    }
}

fn from_files(files: &[PathBuf]) -> anyhow::Result<Ring> {
    let mut signers = Vec::new();
    for path in files {
        let pem = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("cannot read signing key {}: {err}", path.display()))?;
        let der = pem_body(&pem)
            .ok_or_else(|| anyhow::anyhow!("{} is not a PEM PRIVATE KEY", path.display()))?;
        let kid = key_id(&der);
        signers.push(
            Signer::from_pkcs8(kid, &der)
                .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?,
        );
    }
    let jwks = JwkSet {
        keys: signers.iter().map(Signer::jwk).collect(),
    };
    let signer = Arc::new(signers.remove(0));
    Ok(Ring { signer, jwks })
}

/// The DER inside a `-----BEGIN PRIVATE KEY-----` block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    STANDARD
        .decode(body.trim())
        .ok()
        .filter(|der| !der.is_empty())
}

/// A stable key id derived from the key itself.
fn key_id(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_key_is_published_until_its_tokens_have_expired() {
        let now = Utc::now();
        let ttl = Duration::minutes(15);
        let keys = |successor_age: Duration| {
            vec![
                (Signer::generate().expect("key"), now - successor_age),
                (Signer::generate().expect("key"), now - Duration::days(10)),
            ]
        };
        assert_eq!(
            ring_of(keys(Duration::minutes(5)), ttl, now)
                .jwks
                .keys
                .len(),
            2
        );
        assert_eq!(
            ring_of(keys(Duration::minutes(20)), ttl, now)
                .jwks
                .keys
                .len(),
            1
        );
    }

    #[test]
    fn a_pem_private_key_is_read() {
        let signer = Signer::generate().expect("key");
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(signer.pkcs8())
        );
        let der = pem_body(&pem).expect("PEM body");
        assert_eq!(der, signer.pkcs8());
        assert!(pem_body("not a key").is_none());
    }
}
