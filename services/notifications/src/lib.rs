//! The notifications service: a projection of users from their events, and
//! mail on registration, order placement and shipping: at most one message a
//! second across all replicas, fairly between users and in arrival order for
//! each, none lost and none twice.
//!
//! Event handling lives in [`delivery`], the mails in [`templates`], the
//! paced and fair queue in [`sending`], the mail transport in [`mailer`], the
//! API in [`http`], every SQL statement in [`store`].

pub mod delivery;
pub mod entity;
pub mod http;
pub mod mailer;
pub mod sending;
pub mod store;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use platform::auth::Verifier;
use platform::consumer::Subscription;
use platform::openapi::BearerAuth;
use platform::service::Infra;
use platform::settings::ServiceSettings;
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::Delivery;
use crate::mailer::Mailer;
use crate::sending::Sender;

/// The service's name: its database is `shop_notifications`.
pub const NAME: &str = "notifications";

/// This service's migrations.
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// Settings of the notifications service beyond the shared ones.
#[derive(Debug, Clone, clap::Args)]
pub struct NotificationsArgs {
    /// SMTP server, such as `smtp://user:password@mail.example:587?tls=starttls`
    /// (`smtps://` for TLS from the start). Unset: mail is written to SHOP_MAIL_DIR.
    #[arg(long, env = "SHOP_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SecretString>,
    /// Directory that receives each message as an `.eml` file when no SMTP server is set.
    #[arg(long, env = "SHOP_MAIL_DIR", default_value = "var/mail")]
    pub mail_dir: String,
    /// The sender of every message.
    #[arg(
        long,
        env = "SHOP_MAIL_FROM",
        default_value = "Shop <no-reply@shop.example>"
    )]
    pub mail_from: String,
    /// Least milliseconds between two messages, across all replicas.
    #[arg(long, env = "SHOP_MAIL_INTERVAL_MS", default_value_t = 1000)]
    pub mail_interval_ms: u64,
    /// Attempts at an event before it goes to the dead letter queue.
    #[arg(long, env = "SHOP_NOTIFICATIONS_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,
    /// Attempts at sending one mail before it is marked `failed` (delays
    /// double from SHOP_NOTIFICATIONS_FIRST_RETRY_MS up to 5 minutes; the
    /// default keeps trying for about 20 minutes).
    #[arg(long, env = "SHOP_MAIL_MAX_ATTEMPTS", default_value_t = 12)]
    pub mail_max_attempts: u32,
    /// Milliseconds before the first retry of a failed event or mail (doubling after).
    #[arg(
        long,
        env = "SHOP_NOTIFICATIONS_FIRST_RETRY_MS",
        default_value_t = 1000
    )]
    pub first_retry_ms: u64,
}

impl Default for NotificationsArgs {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mail_dir: "var/mail".into(),
            mail_from: "Shop <no-reply@shop.example>".into(),
            mail_interval_ms: 1000,
            max_attempts: 5,
            mail_max_attempts: 12,
            first_retry_ms: 1000,
        }
    }
}

/// Everything the notifications service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The shared settings.
    pub service: ServiceSettings,
    /// Notifications' own.
    pub notifications: NotificationsArgs,
}

/// What the handlers share.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// The `shop_notifications` database.
    pub db: DatabaseConnection,
    /// Token verification.
    pub verifier: Arc<Verifier>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "shop notifications", description = "The log of every message sent."),
    modifiers(&BearerAuth),
    tags((name = "notifications", description = "Messages"))
)]
struct ApiDoc;

/// The public routes, and the OpenAPI document that describes them.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    platform::openapi::split(
        OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(http::list_notifications)),
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

/// Connects, migrates, consumes events and serves until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = platform::http::bind("notifications", settings.service.listen).await?;
    run_on(listener, settings, shutdown).await
}

/// Like [`run`], on a listener the caller bound (tests bind port 0).
pub async fn run_on(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let infra = Infra::connect(settings.service.clone(), migrations()).await?;
    let mailer = Mailer::new(
        settings
            .notifications
            .smtp_url
            .as_ref()
            .map(ExposeSecret::expose_secret),
        &settings.notifications.mail_dir,
    )?;
    let wake = Arc::new(Notify::new());
    let sender = Sender {
        db: infra.db.clone(),
        mailer,
        from: settings.notifications.mail_from.clone(),
        interval: Duration::from_millis(settings.notifications.mail_interval_ms),
        max_attempts: settings.notifications.mail_max_attempts.max(1),
        first_retry: Duration::from_millis(settings.notifications.first_retry_ms),
    };
    let sending = tokio::spawn(sender.run(wake.clone(), shutdown.clone()));
    let delivery = Delivery {
        db: infra.db.clone(),
        wake,
    };
    let consumer = infra
        .follow(
            Subscription {
                max_attempts: settings.notifications.max_attempts.max(1),
                first_retry: Duration::from_millis(settings.notifications.first_retry_ms),
                ..delivery::SUBSCRIPTION
            },
            Arc::new(delivery),
            &shutdown,
        )
        .await;
    let (api, openapi) = router(AppState {
        db: infra.db.clone(),
        verifier: infra.verifier.clone(),
    });
    let served = infra.serve(api, openapi, listener, shutdown).await;
    consumer.await.ok();
    sending.await.ok();
    served
}
