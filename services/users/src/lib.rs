//! The users service: customer, support and admin profiles.
//!
//! Routes live in [`http`] and [`internal`], the changes they make in
//! [`profiles`], rules in [`domain`], SQL in [`store`].

pub mod domain;
pub mod entity;
pub mod http;
pub mod internal;
pub mod profiles;
pub mod store;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use platform::auth::Verifier;
use platform::internal::InternalToken;
use platform::openapi::BearerAuth;
use platform::outbox::Outbox;
use platform::service::Infra;
use platform::settings::ServiceSettings;
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The service's name: its database is `shop_users`, its metrics say `users`.
pub const NAME: &str = "users";

/// This service's migrations.
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// What the handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// The `shop_users` database.
    pub db: DatabaseConnection,
    /// Where events are written.
    pub outbox: Outbox,
    /// Token verification.
    pub verifier: Arc<Verifier>,
    /// Redis, where revocations are published.
    pub redis: ConnectionManager,
    /// The secret `/internal/*` callers present.
    pub internal: InternalToken,
}

impl AppState {
    /// Revokes every token of deleted users at once, in every service.
    pub async fn revoke_tokens(&self, user_ids: &[uuid::Uuid]) {
        for &user_id in user_ids {
            let revoked = platform::revocation::revoke_user(
                &self.redis,
                self.verifier.revocations(),
                user_id,
            )
            .await;
            if let Err(err) = revoked {
                // The profile is gone; its tokens still expire within their lifetime.
                tracing::error!(%user_id, %err, "could not publish the token revocation");
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "shop users", description = "User profiles: customers, support and admins."),
    modifiers(&BearerAuth),
    tags((name = "users", description = "User profiles"))
)]
struct ApiDoc;

/// The public routes, and the OpenAPI document that describes them.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    platform::openapi::split(
        OpenApiRouter::with_openapi(ApiDoc::openapi())
            .routes(routes!(
                http::create_users,
                http::list_users,
                http::delete_users
            ))
            .routes(routes!(
                http::get_user,
                http::update_user,
                http::delete_user
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
        .route(
            "/internal/users",
            post(internal::register).get(internal::get_many),
        )
        .route(
            "/internal/users/{id}",
            get(internal::get).delete(internal::unregister),
        );
    (router.merge(internal).with_state(state), openapi)
}

/// Connects, migrates and serves until `shutdown`.
pub async fn run(settings: ServiceSettings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = platform::http::bind("users", settings.listen).await?;
    run_on(listener, settings, shutdown).await
}

/// Like [`run`], on a listener the caller bound (tests bind port 0).
pub async fn run_on(
    listener: TcpListener,
    settings: ServiceSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(settings, migrations()).await?;
    let (api, openapi) = router(AppState {
        db: infra.db.clone(),
        outbox: infra.outbox.clone(),
        verifier: infra.verifier.clone(),
        redis: infra.redis.clone(),
        internal: InternalToken::new(infra.settings.internal_token.clone()),
    });
    infra.serve(api, openapi, listener, shutdown).await
}
