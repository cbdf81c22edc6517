//! Minting access tokens with an Ed25519 key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use uuid::Uuid;

use super::{Claims, Role};

/// An Ed25519 signing key with its key id; signs access tokens.
pub struct Signer {
    kid: String,
    pkcs8: Vec<u8>,
    encoding: EncodingKey,
    public: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key never reaches a log.
        f.debug_struct("Signer").field("kid", &self.kid).finish()
    }
}

impl Signer {
    /// Generates a fresh key pair with a new key id.
    pub fn generate() -> anyhow::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("could not generate an Ed25519 key"))?;
        Self::from_pkcs8(Uuid::now_v7().to_string(), pkcs8.as_ref())
    }

    /// Loads a key pair from its PKCS#8 DER form.
    pub fn from_pkcs8(kid: String, pkcs8: &[u8]) -> anyhow::Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|err| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {err}"))?;
        Ok(Self {
            kid,
            pkcs8: pkcs8.to_vec(),
            encoding: EncodingKey::from_ed_der(pkcs8),
            public: pair.public_key().as_ref().to_vec(),
        })
    }

    /// The key id tokens carry in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key in PKCS#8 DER, for storing it.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as a JWK, for the JWK set.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(&self.public),
            }),
        }
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Mints an access token for `user_id` valid for `ttl_seconds`.
    pub fn mint(
        &self,
        user_id: Uuid,
        role: Role,
        issuer: &str,
        audience: &str,
        ttl_seconds: i64,
    ) -> anyhow::Result<(String, Claims)> {
        self.mint_in_session(user_id, role, None, issuer, audience, ttl_seconds)
    }

    /// Like [`Signer::mint`], for a token of login session `session`.
    pub fn mint_in_session(
        &self,
        user_id: Uuid,
        role: Role,
        session: Option<Uuid>,
        issuer: &str,
        audience: &str,
        ttl_seconds: i64,
    ) -> anyhow::Result<(String, Claims)> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            jti: Uuid::now_v7(),
            iat: now,
            exp: now + ttl_seconds,
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            sid: session,
        };
        Ok((self.sign(&claims)?, claims))
    }
}
