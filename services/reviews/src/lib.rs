//! The reviews service: what customers write about products, with verified
//! purchases, and the `review.*` events products keeps its ratings from.
//!
//! Routes live in [`http`], the use cases they call in [`writing`] and
//! [`reading`], rules in [`domain`], SQL in [`store`]; [`projection`] keeps
//! authors, purchases and products from other services' events, and
//! [`peers`] asks those services what events cannot tell in time.

pub mod domain;
pub mod entity;
pub mod http;
pub mod peers;
pub mod projection;
pub mod reading;
pub mod store;
pub mod writing;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use platform::auth::Verifier;
use platform::cache::GenerationalCache;
use platform::openapi::BearerAuth;
use platform::outbox::Outbox;
use platform::peer::Peer;
use platform::service::Infra;
use platform::settings::ServiceSettings;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The service's name: its database is `shop_reviews`, its events say `reviews`.
pub const NAME: &str = "reviews";

pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// Everything the reviews service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub service: ServiceSettings,
    /// The products service (a comma list for several replicas), asked
    /// whether a product exists before it is reviewed.
    pub products_url: String,
    /// The users service (a comma list for several replicas), asked for an
    /// author's name before their `user.registered` has arrived.
    pub users_url: String,
}

/// What the handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub verifier: Arc<Verifier>,
    pub products: peers::Products,
    pub users: peers::Users,
    /// Products' first review pages and summaries (see [`reading`]).
    pub pages: GenerationalCache,
}

/// Seconds a cached page lives; every change drops it sooner.
const PAGE_CACHE_SECS: u64 = 30;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "shop reviews",
        description = "Product reviews: anyone reads them, a signed-in user writes one per product, only its author edits the text."
    ),
    modifiers(&BearerAuth),
    tags((name = "reviews", description = "Product reviews"))
)]
struct ApiDoc;

/// The public routes, and the OpenAPI document that describes them.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    platform::openapi::split(
        OpenApiRouter::with_openapi(ApiDoc::openapi())
            .routes(routes!(http::write_review, http::list_product_reviews))
            .routes(routes!(http::product_summary))
            .routes(routes!(http::read_reviews))
            .routes(routes!(
                http::read_review,
                http::edit_review,
                http::delete_review
            ))
            .routes(routes!(http::list_user_reviews)),
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

/// Connects, migrates and serves until `shutdown`, following events meanwhile.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = platform::http::bind(NAME, settings.service.listen).await?;
    run_on(listener, settings, shutdown).await
}

/// Like [`run`], on a listener the caller bound (tests bind port 0).
pub async fn run_on(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(settings.service.clone(), migrations()).await?;
    let token = infra.settings.internal_token.clone();
    let peer = |name, urls: &str| Peer::new(name, urls, token.clone(), Duration::from_secs(5));
    let pages = GenerationalCache::new(
        infra.redis.clone(),
        &format!("review-pages:{}", infra.database_name()),
        PAGE_CACHE_SECS,
    );
    let state = AppState {
        pages: pages.clone(),
        db: infra.db.clone(),
        outbox: infra.outbox.clone(),
        verifier: infra.verifier.clone(),
        products: peers::Products::new(peer("products", &settings.products_url)),
        users: peers::Users::new(peer("users", &settings.users_url)),
    };
    let consumer = infra
        .follow(
            projection::SUBSCRIPTION,
            Arc::new(projection::Projector {
                db: infra.db.clone(),
                outbox: infra.outbox.clone(),
                pages,
            }),
            &shutdown,
        )
        .await;
    let (api, openapi) = router(state);
    let served = infra.serve(api, openapi, listener, shutdown).await;
    consumer.await.ok();
    served
}
