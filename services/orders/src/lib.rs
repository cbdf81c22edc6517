//! The orders service: bulk orders that never oversell, the status machine,
//! and purchase history.
//!
//! Routes live in [`http`], the use cases they call in [`placing`],
//! [`listing`] and [`transitions`], rules in [`domain`], SQL in [`store`],
//! calls to other services in [`peers`], stock hand-over in [`settlement`],
//! unpaid orders' expiry in [`expiry`], and the decision on holds that
//! lapsed before their confirmation in [`holds`].

pub mod domain;
pub mod entity;
pub mod expiry;
pub mod holds;
pub mod http;
pub mod idempotency;
pub mod listing;
pub mod peers;
pub mod placing;
pub mod settlement;
pub mod store;
pub mod transitions;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use platform::auth::Verifier;
use platform::internal::InternalToken;
use platform::openapi::BearerAuth;
use platform::outbox::Outbox;
use platform::peer::Peer;
use platform::service::Infra;
use platform::settings::ServiceSettings;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::peers::{Products, Users};

/// The service's name: its database is `shop_orders`.
pub const NAME: &str = "orders";

/// This service's migrations.
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// The orders service's own settings.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OrdersArgs {
    /// Seconds after which an `Idempotency-Key` claimed by a request that
    /// never answered (its client or replica died) may be taken over by a retry.
    #[arg(long, env = "SHOP_ORDERS_IDEMPOTENCY_LEASE_SECS", default_value_t = 10)]
    pub idempotency_lease_secs: u64,
    /// Seconds an order may stay `created` (unpaid) before a job cancels it
    /// and gives its stock back.
    #[arg(long, env = "SHOP_ORDERS_PAYMENT_WINDOW_SECS", default_value_t = 3600)]
    pub payment_window_secs: u64,
}

impl Default for OrdersArgs {
    fn default() -> Self {
        Self {
            idempotency_lease_secs: 10,
            payment_window_secs: 3600,
        }
    }
}

/// Everything the orders service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The shared settings.
    pub service: ServiceSettings,
    /// Its own.
    pub orders: OrdersArgs,
    /// The products service (a comma list for several replicas).
    pub products_url: String,
    /// The users service (a comma list for several replicas).
    pub users_url: String,
}

/// What the handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// The `shop_orders` database.
    pub db: DatabaseConnection,
    /// Where events are written.
    pub outbox: Outbox,
    /// Token verification.
    pub verifier: Arc<Verifier>,
    /// Stock reservations.
    pub products: Products,
    /// Profiles.
    pub users: Users,
    /// Wakes the settlement retrier.
    pub settlements: Arc<Notify>,
    /// How long a claimed `Idempotency-Key` waits for its answer before a retry may take it over.
    pub idempotency_lease: Duration,
    /// The secret `/internal/*` callers present.
    pub internal: InternalToken,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "shop orders", description = "Orders, their status, and purchase history."),
    modifiers(&BearerAuth),
    tags((name = "orders", description = "Orders"))
)]
struct ApiDoc;

/// The public routes, and the OpenAPI document that describes them.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    platform::openapi::split(
        OpenApiRouter::with_openapi(ApiDoc::openapi())
            .routes(routes!(
                http::create_orders,
                http::list_orders,
                http::update_orders
            ))
            .routes(routes!(http::get_order, http::update_order))
            .routes(routes!(http::user_orders)),
    )
}

/// The service's OpenAPI document, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The API routes with their state, and the OpenAPI document that describes them.
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = api();
    let internal = Router::new().route(
        "/internal/reservations/lapsed",
        axum::routing::post(holds::lapsed),
    );
    (router.merge(internal).with_state(state), openapi)
}

/// Connects, migrates and serves until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = platform::http::bind("orders", settings.service.listen).await?;
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
    let state = AppState {
        db: infra.db.clone(),
        outbox: infra.outbox.clone(),
        verifier: infra.verifier.clone(),
        products: Products::new(Peer::new(
            "products",
            &settings.products_url,
            token.clone(),
            Duration::from_secs(15),
        )),
        users: Users::new(Peer::new(
            "users",
            &settings.users_url,
            token.clone(),
            Duration::from_secs(10),
        )),
        settlements: Arc::default(),
        idempotency_lease: Duration::from_secs(settings.orders.idempotency_lease_secs),
        internal: InternalToken::new(token),
    };
    let retrier = tokio::spawn(settlement::retry(
        state.db.clone(),
        state.products.clone(),
        state.settlements.clone(),
        shutdown.clone(),
    ));
    let purge_db = state.db.clone();
    let purge = tokio::spawn(platform::jobs::every(
        "purge-idempotency-keys-and-hold-decisions",
        Duration::from_secs(3600),
        shutdown.clone(),
        move || {
            let db = purge_db.clone();
            async move {
                let purged = idempotency::purge(&db).await?;
                tracing::debug!(purged, "forgot old idempotency keys");
                let purged = holds::purge(&db).await?;
                tracing::debug!(purged, "forgot old decisions on lapsed holds");
                Ok(())
            }
        },
    ));
    let window = Duration::from_secs(settings.orders.payment_window_secs.max(1));
    let expiry_state = state.clone();
    let expiry = tokio::spawn(platform::jobs::every(
        "expire-unpaid-orders",
        expiry::interval(window),
        shutdown.clone(),
        move || {
            let state = expiry_state.clone();
            async move {
                let cancelled = expiry::cancel_unpaid(&state, window).await?;
                if cancelled > 0 {
                    tracing::info!(
                        cancelled,
                        "cancelled orders left unpaid past the payment window"
                    );
                }
                Ok(())
            }
        },
    ));
    let (api, openapi) = router(state);
    let served = infra.serve(api, openapi, listener, shutdown).await;
    retrier.await.ok();
    purge.await.ok();
    expiry.await.ok();
    served
}
