//! The auth service: credentials, JWT access tokens, rotating refresh tokens,
//! signing keys and revocation. Profiles and roles belong to the users service.
//!
//! Routes live in [`http`], the use cases they call in [`accounts`]
//! (registration, bulk logins) and [`sessions`] (sign-in, refresh, logout,
//! password changes), rules in [`domain`] and [`rules`], SQL in [`store`].

pub mod accounts;
pub mod deletions;
pub mod domain;
pub mod entity;
pub mod http;
pub mod keys;
pub mod password;
pub mod purge;
pub mod rules;
pub mod sessions;
pub mod store;
pub mod tokens;
pub mod users_client;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use platform::auth::Verifier;
use platform::openapi::BearerAuth;
use platform::rate_limit::{Limit, RateLimiter};
use platform::service::Infra;
use platform::settings::ServiceSettings;
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::LoginLimits;
use crate::keys::KeyRing;
use crate::password::Hasher;
use crate::tokens::TokenPolicy;
use crate::users_client::UsersClient;

/// The service's name: its database is `shop_auth`.
pub const NAME: &str = "auth";

/// This service's migrations.
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// Settings of the auth service beyond the shared ones.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "SHOP_AUTH_ACCESS_TTL_SECS", default_value_t = 900)]
    pub access_ttl_secs: i64,
    /// Lifetime of refresh tokens, in seconds (30 days).
    #[arg(long, env = "SHOP_AUTH_REFRESH_TTL_SECS", default_value_t = 2_592_000)]
    pub refresh_ttl_secs: i64,
    /// bcrypt cost of password hashes.
    #[arg(long, env = "SHOP_AUTH_BCRYPT_COST", default_value_t = 12)]
    pub bcrypt_cost: u32,
    /// Seconds between purges of expired refresh tokens.
    #[arg(long, env = "SHOP_AUTH_PURGE_INTERVAL_SECS", default_value_t = 1800)]
    pub purge_interval_secs: u64,
    /// PEM files of Ed25519 signing keys (PKCS#8), comma separated: the first
    /// signs, the rest only verify. Unset: keys are kept in auth's database.
    #[arg(long, env = "SHOP_AUTH_KEY_FILES", value_delimiter = ',')]
    pub key_files: Vec<PathBuf>,
    /// Failed logins allowed per username per window.
    #[arg(long, env = "SHOP_AUTH_LOGIN_FAILURES_PER_USER", default_value_t = 5)]
    pub login_failures_per_user: u64,
    /// Failed logins allowed per client address per window.
    #[arg(
        long,
        env = "SHOP_AUTH_LOGIN_FAILURES_PER_CLIENT",
        default_value_t = 50
    )]
    pub login_failures_per_client: u64,
    /// Length of the failed-login window, in seconds.
    #[arg(long, env = "SHOP_AUTH_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: u64,
}

impl Default for AuthArgs {
    fn default() -> Self {
        Self {
            access_ttl_secs: 900,
            refresh_ttl_secs: 2_592_000,
            bcrypt_cost: 12,
            purge_interval_secs: 1800,
            key_files: Vec::new(),
            login_failures_per_user: 5,
            login_failures_per_client: 50,
            login_window_secs: 900,
        }
    }
}

/// Everything the auth service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The shared settings.
    pub service: ServiceSettings,
    /// Auth's own.
    pub auth: AuthArgs,
    /// Where the users service's internal routes are.
    pub users_url: String,
}

/// What the handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// The `shop_auth` database.
    pub db: DatabaseConnection,
    /// Verifies bearer tokens (auth's own endpoints need them too).
    pub verifier: Arc<Verifier>,
    /// Redis: revocations and login limits.
    pub redis: ConnectionManager,
    /// The signing keys.
    pub keys: Arc<KeyRing>,
    /// Password hashing.
    pub hasher: Hasher,
    /// The users service.
    pub users: UsersClient,
    /// Failed-login counters.
    pub limiter: RateLimiter,
    /// Failed-login limits.
    pub login_limits: LoginLimits,
    /// Token lifetimes and claims.
    pub policy: TokenPolicy,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "shop auth", description = "Registration, login, tokens and revocation."),
    modifiers(&BearerAuth),
    tags((name = "auth", description = "Accounts and tokens"))
)]
struct ApiDoc;

/// The public routes, and the OpenAPI document that describes them.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    platform::openapi::split(
        OpenApiRouter::with_openapi(ApiDoc::openapi())
            .routes(routes!(http::register))
            .routes(routes!(http::login))
            .routes(routes!(http::refresh))
            .routes(routes!(http::logout))
            .routes(routes!(http::logout_all))
            .routes(routes!(http::change_password))
            .routes(routes!(http::me))
            .routes(routes!(http::create_credentials))
            .routes(routes!(http::jwks)),
    )
}

/// The service's OpenAPI document, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The API routes with their state, and the OpenAPI document that describes them.
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = api();
    (router.with_state(state), openapi)
}

/// Connects, migrates, loads keys and serves until `shutdown`, purging expired tokens meanwhile.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = platform::http::bind("auth", settings.service.listen).await?;
    run_on(listener, settings, shutdown).await
}

/// Like [`run`], on a listener the caller bound (tests bind port 0).
pub async fn run_on(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(settings.service.clone(), migrations()).await?;
    let state = state(&infra, &settings).await?;
    // Auth verifies with its own keys; no need to fetch them over HTTP.
    infra.verifier.set_keys(&state.keys.jwks());

    let purge_db = infra.db.clone();
    let purge = tokio::spawn(platform::jobs::every(
        "purge-expired-refresh-tokens",
        Duration::from_secs(settings.auth.purge_interval_secs.max(1)),
        shutdown.clone(),
        move || {
            let db = purge_db.clone();
            async move {
                purge::purge_expired(&db).await?;
                Ok(())
            }
        },
    ));
    let (keys, verifier, keys_db) = (state.keys.clone(), infra.verifier.clone(), infra.db.clone());
    let reload = tokio::spawn(platform::jobs::every(
        "reload-signing-keys",
        Duration::from_secs(60),
        shutdown.clone(),
        move || {
            let (keys, verifier, db) = (keys.clone(), verifier.clone(), keys_db.clone());
            async move {
                keys.reload(&db).await?;
                verifier.set_keys(&keys.jwks());
                Ok(())
            }
        },
    ));
    let consumer = infra
        .follow(
            deletions::SUBSCRIPTION,
            Arc::new(deletions::UserDeleted {
                db: infra.db.clone(),
                redis: infra.redis.clone(),
                verifier: infra.verifier.clone(),
            }),
            &shutdown,
        )
        .await;
    let (api, openapi) = router(state);
    let served = infra.serve(api, openapi, listener, shutdown).await;
    consumer.await.ok();
    purge.await.ok();
    reload.await.ok();
    served
}

/// Builds the handlers' state from connected infrastructure.
pub async fn state(infra: &Infra, settings: &Settings) -> anyhow::Result<AppState> {
    let keys = KeyRing::load(
        &infra.db,
        settings.auth.key_files.clone(),
        settings.auth.access_ttl_secs,
    )
    .await?;
    let window_secs = settings.auth.login_window_secs.max(1);
    Ok(AppState {
        db: infra.db.clone(),
        verifier: infra.verifier.clone(),
        redis: infra.redis.clone(),
        keys: Arc::new(keys),
        hasher: Hasher::new(settings.auth.bcrypt_cost),
        users: UsersClient::new(platform::peer::Peer::new(
            "users",
            &settings.users_url,
            settings.service.internal_token.clone(),
            Duration::from_secs(10),
        )),
        limiter: RateLimiter::new(
            infra.redis.clone(),
            &format!("login-failures:{}", infra.database_name()),
        ),
        login_limits: LoginLimits {
            per_user: Limit {
                max: settings.auth.login_failures_per_user,
                window_secs,
            },
            per_client: Limit {
                max: settings.auth.login_failures_per_client,
                window_secs,
            },
        },
        policy: TokenPolicy {
            access_ttl: chrono::Duration::seconds(settings.auth.access_ttl_secs.max(1)),
            refresh_ttl: chrono::Duration::seconds(settings.auth.refresh_ttl_secs.max(1)),
            issuer: settings.service.auth.issuer.clone(),
            audience: settings.service.auth.audience.clone(),
        },
    })
}
