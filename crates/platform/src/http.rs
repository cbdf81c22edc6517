//! The middleware stack every service (and the gateway) runs behind, and serving.

mod bare_errors;
mod request_metrics;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use self::bare_errors::ProblemForBareErrorsLayer;
use self::request_metrics::RequestMetricsLayer;
use crate::error::problem;

/// Largest request body any service accepts (1000 bulk items fit well within).
pub const BODY_LIMIT_BYTES: usize = 4 * 1024 * 1024;

/// The request id header, accepted from the client or generated.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Options of the common stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The service name, a label on every metric.
    pub service: &'static str,
    /// Longest a request may run before it is answered 503.
    pub timeout: Duration,
    /// CORS origins (`*` allows any) for the edge, the one place browsers
    /// reach; `None` for a service behind it, whose CORS headers the gateway
    /// would only strip (a CORS layer is about a tenth of a cached read's work).
    pub cors_origins: Option<Vec<String>>,
}

/// Wraps `router` in the common stack: problem+json for every error the
/// stack itself produces, body limit, request id, tracing, metrics, CORS at
/// the edge, timeout.
///
/// The layers are composed into one before they reach the router: a router
/// boxes each layer it is given, and clones the whole chain of boxes for
/// every request, which cost more than the layers' own work.
pub fn stack(router: Router, options: &StackOptions) -> Router {
    let layers = ServiceBuilder::new()
        .layer(ProblemForBareErrorsLayer)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let request_id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id,
                    )
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(Level::WARN)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(RequestMetricsLayer::new(options.service))
        .option_layer(options.cors_origins.as_deref().map(cors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            options.timeout,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES));
    router.layer(layers)
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
            REQUEST_ID.clone(),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            REQUEST_ID.clone(),
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|origin| origin == "*") {
        layer.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|origin| HeaderValue::from_str(origin).ok())
            .collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}

/// Binds `service`'s listening address, or says which service could not and why.
pub async fn bind(service: &str, addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| anyhow::anyhow!("{service} cannot listen on {addr}: {err}"))
}

/// How a listener treats slow and greedy clients.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest a client may take to send a request's headers, and longest a
    /// kept-alive connection may sit idle before its next request: a client
    /// sending one header line every few seconds is cut off.
    pub header_read_timeout: Duration,
    /// Connections one listener serves at once; past it, new ones wait in the
    /// kernel's backlog until one closes.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;

    let addr = listener.local_addr()?;
    crate::in_process::register(addr, app.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors, say: pause rather than spin.
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        stream.set_nodelay(true).ok();
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let mut app = app.clone();
                async move {
                    use tower::Service;
                    app.call(req.map(axum::body::Body::new)).await
                }
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            connection.await.ok();
            drop(slot);
        });
    }
    // A service shutting down takes no new calls, in memory or not.
    crate::in_process::withdraw(addr);
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A router answering every request with a problem+json 404 (the fallback).
pub async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no such resource".into(),
        Vec::new(),
        None,
    )
    .into_response()
}
