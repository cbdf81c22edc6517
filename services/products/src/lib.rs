//! The products service: the catalogue, search, optimistic locking, a Redis
//! read cache, and stock reservations for orders.
//!
//! Routes live in [`http`] and [`internal`], the use cases they call in
//! [`catalogue`] (changes) and [`listing`] (lists, searches, bulk reads, with
//! the in-memory ranked matches of [`search`]), rules in [`domain`], SQL in
//! [`store`] (catalogue) and [`stock`] (reservations), and the settling of
//! lapsed holds in [`lapsed`]; [`ratings`] keeps each product's rating from
//! the reviews service's events.

pub mod catalogue;
pub mod domain;
pub mod entity;
pub mod http;
pub mod internal;
pub mod lapsed;
pub mod listing;
pub mod ratings;
pub mod search;
pub mod seed;
pub mod stock;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use platform::auth::Verifier;
use platform::cache::{GenerationalCache, VersionedCache};
use platform::internal::InternalToken;
use platform::openapi::BearerAuth;
use platform::outbox::Outbox;
use platform::service::Infra;
use platform::settings::ServiceSettings;
use sea_orm::DatabaseConnection;
use search::MatchCache;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The service's name: its database is `shop_products`.
pub const NAME: &str = "products";

/// This service's migrations.
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// Settings of the products service beyond the shared ones.
#[derive(Debug, Clone, clap::Args)]
pub struct ProductsArgs {
    /// Seconds a stock reservation is held before it lapses unless confirmed.
    #[arg(
        long,
        env = "SHOP_PRODUCTS_RESERVATION_TTL_SECS",
        default_value_t = 300
    )]
    pub reservation_ttl_secs: u64,
    /// Seconds between sweeps for lapsed reservations.
    #[arg(long, env = "SHOP_PRODUCTS_EXPIRY_INTERVAL_SECS", default_value_t = 15)]
    pub expiry_interval_secs: u64,
    /// Seconds a product stays in the Redis cache.
    #[arg(long, env = "SHOP_PRODUCTS_CACHE_TTL_SECS", default_value_t = 300)]
    pub cache_ttl_secs: u64,
    /// Seconds a list or search page stays cached (0: never). Edits, deletions
    /// and products selling out drop them at once; stock counts in lists may
    /// lag by up to this long.
    #[arg(long, env = "SHOP_PRODUCTS_LIST_CACHE_TTL_SECS", default_value_t = 10)]
    pub list_cache_ttl_secs: u64,
    /// Megabytes of memory for the ranked matches of recent searches, kept
    /// as long as list pages (and dropped with them).
    #[arg(long, env = "SHOP_PRODUCTS_SEARCH_CACHE_MB", default_value_t = 32)]
    pub search_cache_mb: u64,
}

impl Default for ProductsArgs {
    fn default() -> Self {
        Self {
            reservation_ttl_secs: 300,
            expiry_interval_secs: 15,
            cache_ttl_secs: 300,
            list_cache_ttl_secs: 10,
            search_cache_mb: 32,
        }
    }
}

/// Everything the products service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The shared settings.
    pub service: ServiceSettings,
    /// Products' own.
    pub products: ProductsArgs,
    /// The orders service (a comma list for several replicas), asked about
    /// holds that lapsed before their confirmation arrived.
    pub orders_url: String,
}

/// What the handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// The `shop_products` database.
    pub db: DatabaseConnection,
    /// Where events are written.
    pub outbox: Outbox,
    /// Token verification.
    pub verifier: Arc<Verifier>,
    /// The read cache of single products. Behind an `Arc`, like the match
    /// cache: axum clones the whole state for every request, and cloning
    /// these field by field was a tenth of a cached read's work.
    pub cache: Arc<VersionedCache>,
    /// The cache of list and search pages.
    pub lists: GenerationalCache,
    /// The ranked matches of recent search texts, in this process.
    pub matches: Arc<MatchCache>,
    /// The secret `/internal/*` callers present.
    pub internal: InternalToken,
    /// How long a reservation is held.
    pub hold_for: chrono::Duration,
    /// Asked what becomes of lapsed holds.
    pub orders: lapsed::Orders,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "shop products", description = "The catalogue: search, optimistic locking, stock."),
    modifiers(&BearerAuth),
    tags((name = "products", description = "Products"))
)]
struct ApiDoc;

/// The public routes, and the OpenAPI document that describes them.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    platform::openapi::split(
        OpenApiRouter::with_openapi(ApiDoc::openapi())
            .routes(routes!(http::create_products, http::list_products))
            .routes(routes!(
                http::get_product,
                http::update_product,
                http::delete_product
            )),
    )
}

/// The service's OpenAPI document, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The API routes with their state, and the OpenAPI document that describes them.
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = api();
    let internal = Router::new()
        .route("/internal/reservations", post(internal::reserve))
        .route(
            "/internal/reservations/confirmations",
            post(internal::confirm_many),
        )
        .route("/internal/reservations/{id}", get(internal::get))
        .route(
            "/internal/reservations/{id}/confirm",
            post(internal::confirm),
        )
        .route(
            "/internal/reservations/{id}/release",
            post(internal::release),
        );
    (router.merge(internal).with_state(state), openapi)
}

/// Connects, migrates and serves until `shutdown`, settling lapsed reservations meanwhile.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = platform::http::bind("products", settings.service.listen).await?;
    run_on(listener, settings, shutdown).await
}

/// Like [`run`], on a listener the caller bound (tests bind port 0).
pub async fn run_on(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(settings.service.clone(), migrations()).await?;
    let state = AppState {
        db: infra.db.clone(),
        outbox: infra.outbox.clone(),
        verifier: infra.verifier.clone(),
        cache: Arc::new(VersionedCache::new(
            infra.redis.clone(),
            "product",
            settings.products.cache_ttl_secs,
        )),
        lists: GenerationalCache::new(
            infra.redis.clone(),
            &format!("product-lists:{}", infra.database_name()),
            settings.products.list_cache_ttl_secs,
        ),
        matches: Arc::new(MatchCache::new(
            settings.products.search_cache_mb << 20,
            Duration::from_secs(settings.products.list_cache_ttl_secs),
        )),
        internal: InternalToken::new(infra.settings.internal_token.clone()),
        hold_for: chrono::Duration::seconds(settings.products.reservation_ttl_secs.max(1) as i64),
        orders: lapsed::Orders::new(&settings.orders_url, infra.settings.internal_token.clone()),
    };
    let sweeper_state = state.clone();
    let sweeper = tokio::spawn(platform::jobs::every(
        "release-lapsed-reservations",
        Duration::from_secs(settings.products.expiry_interval_secs.max(1)),
        shutdown.clone(),
        move || {
            let state = sweeper_state.clone();
            async move { lapsed::sweep(&state).await }
        },
    ));
    let consumer = infra
        .follow(
            ratings::SUBSCRIPTION,
            Arc::new(ratings::Ratings {
                db: infra.db.clone(),
                cache: state.cache.clone(),
            }),
            &shutdown,
        )
        .await;
    let (api, openapi) = router(state);
    let served = infra.serve(api, openapi, listener, shutdown).await;
    sweeper.await.ok();
    consumer.await.ok();
    served
}
