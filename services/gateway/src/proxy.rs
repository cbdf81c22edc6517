//! Forwarding a request to a service and its answer back, unchanged but for
//! hop-by-hop headers; a service that cannot be reached is a problem+json 503.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use platform::ApiError;

use crate::routes::service_for;

/// Headers that describe one connection, not the message: never forwarded.
/// Named, not spelled, so that no request parses their names again.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The replicas of one service, taken in turn.
#[derive(Debug)]
struct Replicas {
    bases: Vec<String>,
    next: AtomicUsize,
}

impl Replicas {
    fn pick(&self) -> Option<&str> {
        if self.bases.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        Some(&self.bases[turn % self.bases.len()])
    }
}

/// The gateway's upstreams and its pooled HTTP client.
#[derive(Clone, Debug)]
pub struct Upstreams {
    client: Client<HttpConnector, Body>,
    services: Arc<HashMap<&'static str, Replicas>>,
    timeout: Duration,
}

impl Upstreams {
    /// Upstreams at these base URLs (`http://host:port`, one or more replicas
    /// each, used in turn), by service name.
    pub fn new(bases: HashMap<&'static str, Vec<String>>, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let services = bases
            .into_iter()
            .map(|(name, bases)| {
                let replicas = Replicas {
                    bases,
                    next: AtomicUsize::new(0),
                };
                (name, replicas)
            })
            .collect();
        Self {
            client,
            services: Arc::new(services),
            timeout,
        }
    }

    /// Sends `req` to `service` at `path_and_query`, translating failures into problems.
    pub async fn forward(
        &self,
        service: &'static str,
        path_and_query: &str,
        client_addr: Option<SocketAddr>,
        req: Request,
    ) -> Response {
        let Some(base) = self.services.get(service).and_then(Replicas::pick) else {
            return ApiError::NotFound("no such resource".into()).into_response();
        };
        let uri: Uri = match format!("{base}{path_and_query}").parse() {
            Ok(uri) => uri,
            Err(_) => {
                return ApiError::BadRequest("malformed request target".into()).into_response();
            }
        };
        let (mut parts, body) = req.into_parts();
        parts.uri = uri;
        strip_hop_by_hop(&mut parts.headers);
        // Only services hold the internal token; a client's copy is not passed on.
        parts.headers.remove(platform::internal::HEADER);
        let original_host = parts.headers.remove(header::HOST);
        if let Some(host) = original_host {
            parts.headers.insert(X_FORWARDED_HOST.clone(), host);
        }
        // The client as the edge resolved it (through trusted proxies only),
        // replacing whatever the client claimed.
        let client = parts
            .extensions
            .get::<crate::limits::ClientAddress>()
            .map(|client| client.0)
            .or(client_addr.map(|addr| addr.ip()));
        if let Some(client) = client
            && let Ok(value) = HeaderValue::from_str(&client.to_string())
        {
            parts.headers.insert(X_FORWARDED_FOR.clone(), value);
        }
        let outgoing = Request::from_parts(parts, body);
        if let Some(app) = platform::in_process::lookup(outgoing.uri()) {
            // The service runs in this process (`shop serve`): hand it the request in memory.
            return match platform::in_process::call(app, outgoing, self.timeout).await {
                Some(response) => {
                    let (parts, body) = response.into_parts();
                    from_upstream(parts, body)
                }
                None => timed_out(service),
            };
        }
        match tokio::time::timeout(self.timeout, self.client.request(outgoing)).await {
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                from_upstream(parts, Body::new(body))
            }
            Ok(Err(err)) if err.is_connect() => ApiError::ServiceUnavailable(format!(
                "the {service} service is unavailable; try again shortly"
            ))
            .into_response(),
            Ok(Err(err)) => {
                tracing::warn!(service, error = %err, "upstream request failed");
                ApiError::BadGateway(format!("the {service} service failed to answer"))
                    .into_response()
            }
            Err(_) => timed_out(service),
        }
    }
}

fn timed_out(service: &str) -> Response {
    ApiError::GatewayTimeout(format!("the {service} service did not answer in time"))
        .into_response()
}

/// A service's answer as the gateway passes it on: without hop-by-hop
/// headers, and without CORS headers, which the edge answers once.
fn from_upstream(mut parts: axum::http::response::Parts, body: Body) -> Response {
    strip_hop_by_hop(&mut parts.headers);
    let cors: Vec<_> = parts
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        parts.headers.remove(name);
    }
    let vary: Vec<HeaderValue> = parts
        .headers
        .get_all(header::VARY)
        .iter()
        .filter(|value| !is_cors_vary(value))
        .cloned()
        .collect();
    parts.headers.remove(header::VARY);
    for value in vary {
        parts.headers.append(header::VARY, value);
    }
    Response::from_parts(parts, body)
}

/// The `Vary` a service's CORS layer adds; the gateway's own layer adds it again.
fn is_cors_vary(value: &HeaderValue) -> bool {
    value
        .to_str()
        .map(|v| {
            v.to_ascii_lowercase()
                .contains("access-control-request-method")
        })
        .unwrap_or(false)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The catch-all handler: forward public paths, 404 everything else.
pub async fn public_api(State(upstreams): State<Arc<Upstreams>>, req: Request) -> Response {
    let client_addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let Some(service) = service_for(req.uri().path()) else {
        return ApiError::NotFound(format!("no such resource: {}", req.uri().path()))
            .into_response();
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    upstreams
        .forward(service, &path_and_query, client_addr, req)
        .await
}
