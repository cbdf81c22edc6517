//! The gateway: one port for the whole public API, each path forwarded to the
//! service that owns it, `/internal/*` never exposed, and one Swagger UI
//! holding every service's OpenAPI document, served from the binary.

pub mod limits;
pub mod proxy;
pub mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use platform::ApiError;
use platform::http::{StackOptions, stack};
use platform::settings::CommonArgs;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa_swagger_ui::{Config, SwaggerUi, Url};

pub use crate::limits::{Edge, RateLimits};
use crate::proxy::Upstreams;

/// The services behind the gateway, with where Swagger UI finds each document.
pub const DOCUMENTED: &[(&str, &str)] = &[
    ("auth", "/docs/openapi/auth.json"),
    ("users", "/docs/openapi/users.json"),
    ("products", "/docs/openapi/products.json"),
    ("orders", "/docs/openapi/orders.json"),
    ("notifications", "/docs/openapi/notifications.json"),
    ("reviews", "/docs/openapi/reviews.json"),
];

/// The default port of the gateway's operator listener (`SHOP_GATEWAY_OPS_PORT`).
pub const OPS_PORT: u16 = 9080;

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Base URLs of each service's replicas, by name.
    pub upstreams: HashMap<&'static str, Vec<String>>,
    /// Longest an upstream may take to answer.
    pub timeout: Duration,
    /// CORS origins (`*` for any).
    pub cors_origins: Vec<String>,
    /// Limits on slow and greedy clients.
    pub connections: platform::http::ConnectionLimits,
    /// Rate limits and who a client is.
    pub edge: Edge,
    /// Where the operator's endpoints (`/metrics`, `/healthz`, `/readyz`)
    /// listen, apart from the public port; `None`: nowhere.
    pub ops_listen: Option<SocketAddr>,
}

impl Settings {
    /// Resolves the gateway's settings from the shared arguments.
    pub fn from_args(
        args: &CommonArgs,
        limits: RateLimits,
    ) -> Result<Self, platform::settings::SettingsError> {
        let port = platform::settings::service_env("gateway", "PORT")
            .and_then(|raw| raw.parse().ok())
            .unwrap_or(8080);
        let ops_port = platform::settings::service_env("gateway", "OPS_PORT")
            .and_then(|raw| raw.parse().ok())
            .unwrap_or(OPS_PORT);
        Ok(Self {
            listen: SocketAddr::new(args.host, port),
            ops_listen: (ops_port != 0).then(|| SocketAddr::new(args.host, ops_port)),
            upstreams: DOCUMENTED
                .iter()
                .map(|(service, _)| {
                    let replicas = args
                        .upstream_url(service)
                        .split(',')
                        .map(|url| url.trim().trim_end_matches('/').to_owned())
                        .filter(|url| !url.is_empty())
                        .collect();
                    (*service, replicas)
                })
                .collect(),
            timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            cors_origins: args
                .cors_origins
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            connections: args.connection_limits(),
            edge: Edge {
                limits,
                redis_url: args.redis_url.clone(),
                key_prefix: args.broker_namespace.clone(),
                auth: args.auth_settings(),
                proxies: platform::client_address::TrustedProxies::parse(&args.trusted_proxies)?,
            },
        })
    }
}

/// The gateway's routes, wrapped in the common stack and the rate limits.
pub fn router(settings: &Settings, limiter: limits::Limiter) -> Router {
    let upstreams = Upstreams::new(settings.upstreams.clone(), settings.timeout);
    let urls: Vec<Url<'static>> = DOCUMENTED
        .iter()
        .map(|(service, path)| Url::new(service, path))
        .collect();
    let swagger = SwaggerUi::new("/docs").config(Config::new(urls).validator_url("none"));
    let app = Router::new()
        .route("/healthz", get(platform::service::healthz))
        .route("/readyz", get(platform::service::readyz_alone))
        .route("/docs/openapi/{document}", get(service_document))
        .fallback(proxy::public_api)
        // Shared, not copied, into every request.
        .with_state(Arc::new(upstreams))
        .merge(swagger)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(limiter),
            limits::limit,
        ));
    stack(
        app,
        &StackOptions {
            service: "gateway",
            // A little longer than the upstream timeout, so that one answers first.
            timeout: settings.timeout + Duration::from_secs(1),
            cors_origins: Some(settings.cors_origins.clone()),
        },
    )
}

/// `/docs/openapi/<service>.json`: the service's own `/openapi.json`.
async fn service_document(
    State(upstreams): State<Arc<Upstreams>>,
    axum::extract::Path(document): axum::extract::Path<String>,
    req: Request,
) -> Response {
    let service = DOCUMENTED
        .iter()
        .map(|(service, _)| *service)
        .find(|service| document.strip_suffix(".json") == Some(service));
    match service {
        Some(service) => upstreams.forward(service, "/openapi.json", None, req).await,
        None => ApiError::NotFound(format!("no OpenAPI document named {document}")).into_response(),
    }
}

/// Serves the gateway until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = platform::http::bind("gateway", settings.listen).await?;
    run_on(listener, settings, shutdown).await
}

/// Like [`run`], on a listener the caller bound.
pub async fn run_on(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    platform::metrics::handle();
    let app = router(&settings, settings.edge.limiter().await?);
    // The public port serves no metrics: they are for the operator, on a port
    // of their own that no Ingress routes to.
    let ops = match settings.ops_listen {
        Some(addr) => {
            let listener = platform::http::bind("gateway operator endpoints", addr).await?;
            let ops = Router::new()
                .route("/metrics", get(platform::service::metrics))
                .route("/healthz", get(platform::service::healthz))
                .route("/readyz", get(platform::service::readyz_alone));
            let (limits, stop) = (settings.connections, shutdown.clone());
            Some(tokio::spawn(async move {
                platform::http::serve(listener, ops, limits, stop).await
            }))
        }
        None => None,
    };
    tracing::info!(service = "gateway", addr = %listener.local_addr()?, "listening");
    platform::http::serve(listener, app, settings.connections, shutdown).await?;
    if let Some(ops) = ops {
        ops.await??;
    }
    Ok(())
}
