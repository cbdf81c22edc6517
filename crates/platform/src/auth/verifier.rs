//! Verifying access tokens against the auth service's JWK set, with the
//! revocation set held in memory so a check costs no network round trip.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Claims;
use crate::settings::AuthSettings;

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not a JWT, bad signature, wrong issuer or audience, and the like.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token was valid once and has expired.
    #[error("the token has expired")]
    Expired,
    /// The token was revoked (logout, password change, user deleted).
    #[error("the token has been revoked")]
    Revoked,
    /// The token names a key the JWK set does not have.
    #[error("invalid token: unknown signing key")]
    UnknownKey,
    /// The JWK set could not be fetched, so nothing can be verified.
    #[error("{0}")]
    KeysUnavailable(String),
}

/// Tokens revoked before their expiry, kept in memory on every replica and
/// kept current by [`crate::revocation::follow`].
#[derive(Debug, Default)]
pub struct Revocations {
    tokens: RwLock<HashMap<Uuid, i64>>,
    users: RwLock<HashMap<Uuid, i64>>,
}

impl Revocations {
    /// Revokes the tokens carrying `id` as their `jti` (one token) or their
    /// `sid` (a login session), until they would have expired anyway.
    pub fn revoke_token(&self, id: Uuid, exp: i64) {
        write(&self.tokens).insert(id, exp);
    }

    /// Revokes every token of `user_id` issued up to `at_ms` (milliseconds since the epoch).
    pub fn revoke_user(&self, user_id: Uuid, at_ms: i64) {
        let mut users = write(&self.users);
        let entry = users.entry(user_id).or_insert(at_ms);
        *entry = (*entry).max(at_ms);
    }

    /// True when `claims` were revoked by either rule.
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        {
            let tokens = read(&self.tokens);
            if tokens.contains_key(&claims.jti)
                || claims.sid.is_some_and(|sid| tokens.contains_key(&sid))
            {
                return true;
            }
        }
        let users = read(&self.users);
        let Some(&before_ms) = users.get(&claims.sub) else {
            return false;
        };
        issued_at_ms(claims) <= before_ms
    }

    /// Forgets revocations that no live token can match any more.
    pub fn prune(&self, now: i64, user_retention_secs: i64) {
        write(&self.tokens).retain(|_, exp| *exp > now);
        let horizon_ms = (now - user_retention_secs) * 1000;
        write(&self.users).retain(|_, at_ms| *at_ms > horizon_ms);
    }
}

/// When a token was issued, to the millisecond: the `jti` is a UUID v7 whose
/// timestamp is finer than `iat`, so a login in the same second as a
/// revocation is told apart from the tokens the revocation meant.
fn issued_at_ms(claims: &Claims) -> i64 {
    match claims.jti.get_timestamp() {
        Some(ts) => {
            let (secs, nanos) = ts.to_unix();
            secs as i64 * 1000 + i64::from(nanos / 1_000_000)
        }
        None => claims.iat * 1000,
    }
}

// A poisoned lock only means another thread panicked mid-insert into a plain
// map; the map is still usable, so recover it rather than fail every request.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct KeyEntry {
    key: DecodingKey,
    algorithm: Algorithm,
}

/// Most verified tokens remembered; beyond it the memo starts over.
const MEMO_CAPACITY: usize = 20_000;
/// Least time between two JWKS fetches triggered by unknown key ids.
const REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// Verifies bearer tokens; one per process is enough, shared behind an `Arc`.
pub struct Verifier {
    settings: AuthSettings,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, Arc<KeyEntry>>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    // Signature checks cost tens of microseconds; a token, once verified, is
    // remembered by its hash until it expires. Revocation is checked every time.
    memo: RwLock<HashMap<[u8; 32], Arc<Claims>>>,
    revocations: Arc<Revocations>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("jwks_url", &self.settings.jwks_url)
            .finish()
    }
}

impl Verifier {
    /// A verifier that fetches keys from `settings.jwks_url` when it meets an unknown `kid`.
    pub fn new(settings: AuthSettings) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            settings,
            keys: RwLock::default(),
            last_fetch: tokio::sync::Mutex::new(None),
            memo: RwLock::default(),
            revocations: Arc::default(),
        }
    }

    /// The revocation set this verifier consults.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// Replaces the known keys with those of `jwks` (only EdDSA and RS256 keys are kept).
    pub fn set_keys(&self, jwks: &JwkSet) {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            // The algorithm follows from the key type, never from the token:
            // that is what stops `alg: none` and HS256-with-the-public-key.
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    Algorithm::EdDSA
                }
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, Arc::new(KeyEntry { key, algorithm }));
            }
        }
        *write(&self.keys) = keys;
    }

    /// Verifies `token`: signature, issuer, audience, expiry, revocation.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, VerifyError> {
        let now = chrono::Utc::now().timestamp();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered = read(&self.memo).get(&digest).cloned();
        let claims = match remembered {
            Some(claims) if claims.exp > now => claims,
            Some(_) => return Err(VerifyError::Expired),
            None => {
                let claims = Arc::new(self.verify_signature(token).await?);
                let mut memo = write(&self.memo);
                if memo.len() >= MEMO_CAPACITY {
                    memo.clear();
                }
                memo.insert(digest, claims.clone());
                claims
            }
        };
        if self.revocations.is_revoked(&claims) {
            return Err(VerifyError::Revoked);
        }
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| VerifyError::Invalid(err.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| VerifyError::Invalid("the token names no key id".into()))?;
        let entry = match self.key(&kid) {
            Some(entry) => entry,
            None => {
                self.refresh_keys().await?;
                self.key(&kid).ok_or(VerifyError::UnknownKey)?
            }
        };
        if header.alg != entry.algorithm {
            return Err(VerifyError::Invalid(format!(
                "algorithm {:?} is not the key's",
                header.alg
            )));
        }
        let mut validation = Validation::new(entry.algorithm);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &entry.key, &validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired,
                _ => VerifyError::Invalid(err.to_string()),
            })
    }

    fn key(&self, kid: &str) -> Option<Arc<KeyEntry>> {
        read(&self.keys).get(kid).cloned()
    }

    /// Fetches the JWK set, at most once per few seconds however many unknown keys arrive.
    pub async fn refresh_keys(&self) -> Result<(), VerifyError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return Ok(());
        }
        let fetched = async {
            self.http
                .get(&self.settings.jwks_url)
                .send()
                .await?
                .error_for_status()?
                .json::<JwkSet>()
                .await
        }
        .await;
        match fetched {
            Ok(jwks) => {
                *last = Some(Instant::now());
                self.set_keys(&jwks);
                Ok(())
            }
            Err(err) => {
                tracing::warn!(url = %self.settings.jwks_url, %err, "could not fetch the JWK set");
                Err(VerifyError::KeysUnavailable(format!(
                    "the signing keys at {} are unreachable",
                    self.settings.jwks_url
                )))
            }
        }
    }
}
