//! Rate limits at the edge: every client gets a budget per minute for reads,
//! for writes and for the auth routes, plus one for registrations per
//! address. A client is its token's subject when it sends a valid bearer
//! token, its address otherwise (through trusted proxies only). The counts
//! live in Redis, shared by every gateway replica and atomic under any
//! concurrency; while Redis is away each replica counts on its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::auth::Verifier;
use platform::client_address::TrustedProxies;
use platform::rate_limit::{Allowance, Limit, RateLimiter};
use platform::settings::AuthSettings;

/// Budgets per client and minute; `0` turns one off.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RateLimits {
    /// Reads (GET, HEAD) per client and minute.
    #[arg(long, env = "SHOP_RATE_LIMIT_READS", default_value_t = 1200)]
    pub reads: u64,
    /// Writes per client and minute.
    #[arg(long, env = "SHOP_RATE_LIMIT_WRITES", default_value_t = 300)]
    pub writes: u64,
    /// Requests to `/auth/*` per client and minute.
    #[arg(long, env = "SHOP_RATE_LIMIT_AUTH", default_value_t = 30)]
    pub auth: u64,
    /// Registrations per client address and minute.
    #[arg(long, env = "SHOP_RATE_LIMIT_REGISTRATIONS", default_value_t = 10)]
    pub registrations: u64,
}

impl RateLimits {
    /// No limits at all.
    pub const OFF: Self = Self {
        reads: 0,
        writes: 0,
        auth: 0,
        registrations: 0,
    };
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            reads: 1200,
            writes: 300,
            auth: 30,
            registrations: 10,
        }
    }
}

/// Everything the edge needs to tell clients apart and count them.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The budgets.
    pub limits: RateLimits,
    /// Redis, where the counts live (unused when every budget is off).
    pub redis_url: String,
    /// Names this deployment in shared Redis.
    pub key_prefix: String,
    /// How bearer tokens are checked, to key a request by its subject.
    pub auth: AuthSettings,
    /// Whose `X-Forwarded-For` is believed.
    pub proxies: TrustedProxies,
}

impl Edge {
    /// No budgets, no trusted proxies: every client is its peer address.
    pub fn unlimited() -> Self {
        Self {
            limits: RateLimits::OFF,
            redis_url: String::new(),
            key_prefix: String::new(),
            auth: AuthSettings::default(),
            proxies: TrustedProxies::default(),
        }
    }

    /// The middleware's state: connects to Redis when any budget is on.
    pub async fn limiter(&self) -> anyhow::Result<Limiter> {
        let limits = self.limits;
        let any = limits.reads + limits.writes + limits.auth + limits.registrations > 0;
        let counts = if any {
            let redis = platform::kv::connect(&self.redis_url).await?;
            Some(RateLimiter::new(
                redis,
                &format!("ratelimit:{}", self.key_prefix),
            ))
        } else {
            None
        };
        Ok(Limiter {
            counts,
            limits,
            verifier: Arc::new(Verifier::new(self.auth.clone())),
            subjects: moka::future::Cache::builder()
                .max_capacity(SUBJECTS_KEPT)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
            proxies: self.proxies.clone(),
        })
    }
}

/// The client's address as the gateway resolved it, for the services behind.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// What the limiting middleware needs.
#[derive(Clone)]
pub struct Limiter {
    /// The counters.
    pub counts: Option<RateLimiter>,
    /// The budgets.
    pub limits: RateLimits,
    /// Token checks, to key a request by its subject.
    pub verifier: Arc<Verifier>,
    /// Subjects of tokens verified lately: a signature check per request
    /// would cost the edge more than the counting does.
    pub subjects: moka::future::Cache<String, uuid::Uuid>,
    /// Whose `X-Forwarded-For` is believed.
    pub proxies: TrustedProxies,
}

const MINUTE: u64 = 60;

/// Verified tokens whose subjects are kept.
const SUBJECTS_KEPT: u64 = 10_000;

/// Resolves the client, counts the request against its budgets, and answers
/// 429 once one is spent; every answer carries the budget's `RateLimit-*`.
pub async fn limit(State(limiter): State<Arc<Limiter>>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let client = limiter.proxies.client(peer, req.headers());
    req.extensions_mut().insert(ClientAddress(client));
    // Load balancers probe these from one address many times a minute.
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
    let Some(counts) = limiter.counts.as_ref().filter(|_| !probe) else {
        return next.run(req).await;
    };
    let (auth_route, registration) = {
        let path = req.uri().path();
        let auth_route = path == "/auth" || path.starts_with("/auth/");
        (
            auth_route,
            path == "/auth/register" && req.method() == Method::POST,
        )
    };
    let (class, per_minute) = if auth_route {
        ("auth", limiter.limits.auth)
    } else if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        ("reads", limiter.limits.reads)
    } else {
        ("writes", limiter.limits.writes)
    };
    let token = bearer(&req).map(str::to_owned);
    let who = match subject(&limiter, token).await {
        Some(subject) => format!("sub:{subject}"),
        None => format!("ip:{client}"),
    };
    let mut allowance = None;
    if registration && limiter.limits.registrations > 0 {
        let budget = Limit {
            max: limiter.limits.registrations,
            window_secs: MINUTE,
        };
        if let Err(refused) = counts
            .attempt(&format!("registrations:ip:{client}"), budget)
            .await
        {
            return refused.into_response();
        }
    }
    if per_minute > 0 {
        let budget = Limit {
            max: per_minute,
            window_secs: MINUTE,
        };
        match counts.attempt(&format!("{class}:{who}"), budget).await {
            Ok(left) => allowance = Some(left),
            Err(refused) => return refused.into_response(),
        }
    }
    let mut response = next.run(req).await;
    if let Some(left) = allowance {
        announce(&mut response, left);
    }
    response
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    Some(value.strip_prefix("Bearer ")?.trim())
}

/// The subject of a valid bearer token; `None` without one (or with a bad one:
/// the service behind answers that request 401 anyway). Only what verified
/// is remembered, so a forged token never names a subject.
async fn subject(limiter: &Limiter, token: Option<String>) -> Option<uuid::Uuid> {
    let token = token?;
    if let Some(subject) = limiter.subjects.get(&token).await {
        return Some(subject);
    }
    let subject = limiter.verifier.verify(&token).await.ok()?.sub;
    limiter.subjects.insert(token, subject).await;
    Some(subject)
}

fn announce(response: &mut Response, left: Allowance) {
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(left.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(left.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(left.reset_secs));
}
