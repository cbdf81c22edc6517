//! A stand-in for the auth service's JWK set: it serves a real JWKS over
//! HTTP and mints tokens the verifier accepts.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use tokio::net::TcpListener;
use uuid::Uuid;

use platform::auth::{Role, Signer};
use platform::settings::AuthSettings;

/// Serves one generated key at `/auth/jwks` on a loopback port and mints tokens with it.
#[derive(Clone, Debug)]
pub struct TestIssuer {
    signer: Arc<Signer>,
    /// The settings a verifier needs to trust this issuer.
    pub settings: AuthSettings,
}

impl TestIssuer {
    /// Starts the JWKS endpoint on an ephemeral loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let signer = Arc::new(Signer::generate()?);
        let jwks = JwkSet {
            keys: vec![signer.jwk()],
        };
        let app = Router::new().route(
            "/auth/jwks",
            get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "test JWKS server stopped");
            }
        });
        Ok(Self {
            signer,
            settings: AuthSettings {
                jwks_url: format!("http://{addr}/auth/jwks"),
                ..AuthSettings::default()
            },
        })
    }

    /// A valid access token for `user_id` with `role`.
    pub fn token(&self, user_id: Uuid, role: Role) -> String {
        self.token_with_ttl(user_id, role, 900)
    }

    /// A token with a chosen lifetime (negative for an expired one).
    pub fn token_with_ttl(&self, user_id: Uuid, role: Role, ttl_seconds: i64) -> String {
        self.signer
            .mint(
                user_id,
                role,
                &self.settings.issuer,
                &self.settings.audience,
                ttl_seconds,
            )
            .map(|(token, _)| token)
            .expect("signing with a freshly generated Ed25519 key cannot fail")
    }

    /// The signer, for tests that need hand-made claims.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}
