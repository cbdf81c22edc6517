//! What every service is made of at run time: its connections, its ops
//! endpoints, and the loop that serves it until shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use redis::aio::ConnectionManager;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Verifier;
use crate::broker::Broker;
use crate::error::problem;
use crate::http::{StackOptions, not_found, stack};
use crate::outbox::Outbox;
use crate::settings::ServiceSettings;

/// A running service's connections, shared by its handlers and background tasks.
#[derive(Clone, Debug)]
pub struct Infra {
    /// The service's settings.
    pub settings: ServiceSettings,
    /// Its own database.
    pub db: DatabaseConnection,
    pub redis: ConnectionManager,
    /// RabbitMQ.
    pub broker: Arc<Broker>,
    /// Access-token verification.
    pub verifier: Arc<Verifier>,
    /// The outbox writer.
    pub outbox: Outbox,
}

impl Infra {
    /// `subscription` as this deployment runs it.
    pub fn consumer(
        &self,
        subscription: crate::consumer::Subscription,
    ) -> crate::consumer::Consumer {
        crate::consumer::Consumer {
            subscription,
            namespace: self.settings.broker_namespace.clone(),
        }
    }

    /// Consumes `subscription` with `handler` in a task of its own until
    /// `shutdown`; its queues are declared before this returns when the
    /// broker is there (see [`crate::consumer::subscribe`]).
    pub async fn follow(
        &self,
        subscription: crate::consumer::Subscription,
        handler: Arc<dyn crate::consumer::Handler>,
        shutdown: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let consuming = crate::consumer::subscribe(
            self.broker.clone(),
            self.consumer(subscription),
            handler,
            shutdown.clone(),
        )
        .await;
        tokio::spawn(consuming)
    }

    /// The name of the service's database: unique per deployment, so it
    /// namespaces anything the deployment keeps in shared Redis.
    pub fn database_name(&self) -> String {
        use secrecy::ExposeSecret;
        use std::str::FromStr;
        sqlx::postgres::PgConnectOptions::from_str(self.settings.database_url.expose_secret())
            .ok()
            .and_then(|options| options.get_database().map(str::to_owned))
            .unwrap_or_else(|| self.settings.name.to_owned())
    }

    /// Connects to Postgres (creating and migrating the database), Redis and
    /// RabbitMQ (lazily: a broker that is not up yet is retried, not fatal).
    pub async fn connect(settings: ServiceSettings, migrations: Migrator) -> anyhow::Result<Self> {
        anyhow::ensure!(
            crate::internal::strong_enough(&settings.internal_token),
            "the {} service refuses to start: its internal token is shorter than {} bytes",
            settings.name,
            crate::internal::MIN_TOKEN_BYTES
        );
        let db = crate::db::connect_and_migrate(
            &settings.database_url,
            settings.database_pool_size,
            migrations,
        )
        .await?;
        let redis = crate::kv::connect(&settings.redis_url).await?;
        let broker = Arc::new(Broker::new(
            settings.amqp_url.clone(),
            &settings.broker_namespace,
        ));
        if let Err(err) = broker.publisher().await {
            tracing::warn!(service = settings.name, %err, "RabbitMQ is not reachable yet; events wait in the outbox");
        }
        crate::metrics::handle();
        let verifier = Arc::new(Verifier::new(settings.auth.clone()));
        crate::revocation::load(&redis, verifier.revocations())
            .await
            .map_err(|err| anyhow::anyhow!("cannot load token revocations from Redis: {err}"))?;
        Ok(Self {
            settings,
            db,
            redis,
            broker,
            verifier,
            outbox: Outbox::default(),
        })
    }

    /// Serves `api` (with the ops endpoints and the common stack) on `listener`,
    /// runs the outbox relay beside it, and returns after a graceful shutdown.
    pub async fn serve(
        self,
        api: Router,
        openapi: utoipa::openapi::OpenApi,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let name = self.settings.name;
        let app = stack(
            api.merge(ops_routes(&self, openapi)).fallback(not_found),
            &StackOptions {
                service: name,
                timeout: self.settings.request_timeout,
                // Browsers reach the services through the gateway only.
                cors_origins: None,
            },
        );
        let relay = tokio::spawn(self.outbox.clone().relay(
            self.db.clone(),
            self.broker.clone(),
            shutdown.clone(),
        ));
        let revocations = tokio::spawn(crate::revocation::follow(
            self.settings.redis_url.clone(),
            self.redis.clone(),
            self.verifier.revocations().clone(),
            shutdown.clone(),
        ));
        tracing::info!(service = name, addr = %listener.local_addr()?, "listening");
        crate::http::serve(listener, app, self.settings.connections, shutdown).await?;
        relay.await.ok();
        revocations.await.ok();
        tracing::info!(service = name, "stopped");
        Ok(())
    }
}

#[derive(Clone)]
struct Readiness {
    db: DatabaseConnection,
    redis: ConnectionManager,
    broker: Arc<Broker>,
}

fn ops_routes(infra: &Infra, openapi: utoipa::openapi::OpenApi) -> Router {
    let readiness = Readiness {
        db: infra.db.clone(),
        redis: infra.redis.clone(),
        broker: infra.broker.clone(),
    };
    let openapi = Arc::new(openapi);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(readiness))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
}

/// Liveness: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness fails only for what a replica cannot serve without: its own
/// database. Redis and the broker are shared by every replica and each
/// service works on without them (reads fall back to the database, events
/// wait in the outbox), so they are reported, never a reason to leave
/// rotation: failing them would take every replica out at once.
async fn readyz(State(ready): State<Readiness>) -> Response {
    if crate::shutdown::is_draining() {
        return draining();
    }
    let limit = Duration::from_secs(2);
    let (db, redis, broker) = tokio::join!(
        tokio::time::timeout(limit, ready.db.execute_unprepared("SELECT 1")),
        tokio::time::timeout(limit, crate::kv::ping(&ready.redis)),
        tokio::time::timeout(limit, ready.broker.is_ready()),
    );
    let state = |ok: bool| if ok { "ok" } else { "unavailable" };
    let database = matches!(db, Ok(Ok(_)));
    let checks = serde_json::json!({
        "database": state(database),
        "redis": state(matches!(redis, Ok(true))),
        "broker": state(matches!(broker, Ok(true))),
    });
    if database {
        Json(serde_json::json!({ "status": "ready", "checks": checks })).into_response()
    } else {
        let mut response = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: database unavailable ({checks})"),
            Vec::new(),
            None,
        )
        .into_response();
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, 1.into());
        response
    }
}

/// Readiness of a process that only needs itself (the gateway): ready until it drains.
pub async fn readyz_alone() -> Response {
    if crate::shutdown::is_draining() {
        return draining();
    }
    Json(serde_json::json!({ "status": "ready" })).into_response()
}

fn draining() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "draining: this replica is stopping".to_owned(),
        Vec::new(),
        None,
    )
    .into_response()
}

/// The Prometheus exposition of this process's metrics.
pub async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::handle().render(),
    )
}
