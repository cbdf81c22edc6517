//! The services this process serves, by the address they listen on.
//!
//! When a caller (the gateway, or one service calling another) targets an
//! address that a router of this same process listens on, as in `shop serve`,
//! the request is handed to that router in memory instead of crossing
//! loopback TCP. It is the same HTTP message through the same middleware
//! stack; only the socket, two HTTP codecs and four system calls are skipped.
//! A target in another process is called over HTTP as before.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use http::Uri;
use tower::ServiceExt;

fn registry() -> &'static RwLock<HashMap<SocketAddr, Router>> {
    static REGISTRY: OnceLock<RwLock<HashMap<SocketAddr, Router>>> = OnceLock::new();
    REGISTRY.get_or_init(RwLock::default)
}

/// Makes `app`, listening at `addr`, callable in memory until [`withdraw`].
pub fn register(addr: SocketAddr, app: Router) {
    registry()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(addr, app);
}

/// Stops handing calls for `addr` to memory (its service is shutting down).
pub fn withdraw(addr: SocketAddr) {
    registry()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .remove(&addr);
}

/// The router of this process that `uri` (an absolute `http://` URL) reaches, if any.
pub fn lookup(uri: &Uri) -> Option<Router> {
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let port = uri.port_u16().unwrap_or(80);
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other.parse().ok()?,
    };
    let routers = registry()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if routers.is_empty() {
        return None;
    }
    if let Some(app) = routers.get(&SocketAddr::new(ip, port)) {
        return Some(app.clone());
    }
    // A listener on every interface is reached through loopback too.
    if ip.is_loopback() {
        for any in [
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ] {
            if let Some(app) = routers.get(&SocketAddr::new(any, port)) {
                return Some(app.clone());
            }
        }
    }
    None
}

/// Calls `app` with `request` as if it had arrived on a fresh connection;
/// `None` when it does not answer within `timeout`.
pub async fn call(app: Router, request: Request, timeout: Duration) -> Option<Response> {
    let (mut parts, body) = request.into_parts();
    // Nothing the caller's own stack attached may leak into the callee's.
    parts.extensions = http::Extensions::new();
    let request = Request::from_parts(parts, body);
    let answered: Result<Result<Response, Infallible>, _> =
        tokio::time::timeout(timeout, app.oneshot(request)).await;
    match answered {
        Ok(Ok(response)) => Some(response),
        Ok(Err(never)) => match never {},
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_url_finds_a_router_listening_on_every_interface() {
        let addr: SocketAddr = "0.0.0.0:39917".parse().expect("a literal address");
        register(addr, Router::new());
        let uri: Uri = "http://localhost:39917/x".parse().expect("a literal URL");
        assert!(lookup(&uri).is_some());
        withdraw(addr);
        assert!(lookup(&uri).is_none());
    }

    #[test]
    fn another_port_or_scheme_is_not_in_this_process() {
        let addr: SocketAddr = "127.0.0.1:39918".parse().expect("a literal address");
        register(addr, Router::new());
        let other_port: Uri = "http://127.0.0.1:39919/x".parse().expect("a literal URL");
        let tls: Uri = "https://127.0.0.1:39918/x".parse().expect("a literal URL");
        assert!(lookup(&other_port).is_none());
        assert!(lookup(&tls).is_none());
        withdraw(addr);
    }
}
