//! Settings from the environment (or flags), with defaults that work on a
//! development machine running PostgreSQL, Redis and RabbitMQ locally.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use secrecy::SecretString;

/// Every service of the system with its default port; the gateway is first.
pub const SERVICES: &[(&str, u16)] = &[
    ("gateway", 8080),
    ("auth", 8081),
    ("users", 8082),
    ("products", 8083),
    ("orders", 8084),
    ("notifications", 8085),
    ("reviews", 8086),
];

/// Settings every service shares, read from flags or `SHOP_*` environment variables.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// PostgreSQL server; each service uses (and creates) its own database
    /// `shop_<service>` on it, unless `SHOP_<SERVICE>_DATABASE_URL` names another.
    #[arg(
        long,
        env = "SHOP_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432",
        hide_env_values = true
    )]
    pub database_url: SecretString,

    /// Connections in each service's database pool.
    #[arg(long, env = "SHOP_DATABASE_POOL_SIZE", default_value_t = 8)]
    pub database_pool_size: u32,

    /// Redis, for caches, rate limits and token revocations.
    #[arg(
        long,
        env = "SHOP_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// RabbitMQ, for events.
    #[arg(
        long,
        env = "SHOP_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: SecretString,

    /// Shared secret for `/internal/*` calls between services. `shop serve`
    /// generates one when unset; a service started alone requires it.
    #[arg(long, env = "SHOP_INTERNAL_TOKEN", hide_env_values = true)]
    pub internal_token: Option<SecretString>,

    /// A file holding the internal token, read when SHOP_INTERNAL_TOKEN is
    /// unset (a mounted container secret; `shop secrets init` writes one).
    #[arg(long, env = "SHOP_INTERNAL_TOKEN_FILE")]
    pub internal_token_file: Option<std::path::PathBuf>,

    /// Seconds a process keeps serving after SIGTERM while its `/readyz`
    /// answers 503, so its load balancer stops sending before it stops
    /// accepting. Ctrl-C does not wait.
    #[arg(long, env = "SHOP_SHUTDOWN_DRAIN_SECS", default_value_t = 5)]
    pub shutdown_drain_secs: u64,

    /// Where services fetch the public keys that verify access tokens.
    #[arg(
        long,
        env = "SHOP_JWKS_URL",
        default_value = "http://127.0.0.1:8081/auth/jwks"
    )]
    pub jwks_url: String,

    /// The `iss` claim access tokens must carry.
    #[arg(long, env = "SHOP_JWT_ISSUER", default_value = "shop-auth")]
    pub jwt_issuer: String,

    /// The `aud` claim access tokens must carry.
    #[arg(long, env = "SHOP_JWT_AUDIENCE", default_value = "shop")]
    pub jwt_audience: String,

    /// Address every service listens on (0.0.0.0 in a container).
    #[arg(long, env = "SHOP_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Seconds a request may take before it is answered 503.
    #[arg(long, env = "SHOP_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Origins the gateway allows by CORS, comma separated; `*` allows any.
    #[arg(long, env = "SHOP_CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,

    /// Prefix of the exchange and every queue of this deployment, to keep two
    /// deployments on one RabbitMQ apart (empty in the usual case).
    #[arg(long, env = "SHOP_BROKER_NAMESPACE", default_value = "")]
    pub broker_namespace: String,

    /// Seconds a client may take to send a request's headers, and a
    /// kept-alive connection may sit idle; slower clients are cut off.
    #[arg(long, env = "SHOP_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Connections each listener serves at once; more wait until one closes.
    #[arg(long, env = "SHOP_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Proxies (comma list of CIDRs) whose `X-Forwarded-For` names the
    /// client; empty: the connection's peer is the client.
    #[arg(long, env = "SHOP_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// Log format: `json` (one object per line) or `text`.
    #[arg(long, env = "SHOP_LOG_FORMAT", default_value = "json")]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// How a service checks access tokens.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The auth service's JWK set.
    pub jwks_url: String,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwks_url: "http://127.0.0.1:8081/auth/jwks".into(),
            issuer: "shop-auth".into(),
            audience: "shop".into(),
        }
    }
}

/// Everything one service needs to start, resolved from [`CommonArgs`].
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The service's name: `users`, `orders`, ...
    pub name: &'static str,
    /// Where it listens.
    pub listen: SocketAddr,
    /// Its own database.
    pub database_url: SecretString,
    /// Pool size.
    pub database_pool_size: u32,
    /// Redis.
    pub redis_url: String,
    /// RabbitMQ.
    pub amqp_url: SecretString,
    /// Secret for `/internal/*` routes.
    pub internal_token: SecretString,
    /// Token verification.
    pub auth: AuthSettings,
    /// Longest a request may run.
    pub request_timeout: Duration,
    /// Prefix of the exchange and queues this deployment uses.
    pub broker_namespace: String,
    /// Limits on slow and greedy clients.
    pub connections: crate::http::ConnectionLimits,
}

/// Reading settings failed; the message says which and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A required setting is missing.
    #[error("{0}")]
    Missing(String),
    /// A setting has a value that cannot be used.
    #[error("{0}")]
    Invalid(String),
}

/// `url` as it may appear in a log line or a message: its password, if any,
/// replaced by `***` (a URL that does not parse is not shown at all).
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                parsed.set_password(Some("***")).ok();
            }
            parsed.to_string()
        }
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

/// A secret kept in a file, without the line end an editor or `echo` adds.
fn read_secret_file(path: &std::path::Path) -> Result<SecretString, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        SettingsError::Invalid(format!(
            "SHOP_INTERNAL_TOKEN_FILE={}: cannot read it: {err}",
            path.display()
        ))
    })?;
    let token = text.trim_end_matches(['\r', '\n']);
    if token.is_empty() {
        return Err(SettingsError::Invalid(format!(
            "SHOP_INTERNAL_TOKEN_FILE={} is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(token.to_owned()))
}

/// The default port of `service`.
pub fn default_port(service: &str) -> Option<u16> {
    SERVICES
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, port)| *port)
}

/// An environment variable of one service, such as `SHOP_USERS_PORT`.
pub fn service_env(service: &str, key: &str) -> Option<String> {
    std::env::var(format!("SHOP_{}_{key}", service.to_uppercase()))
        .ok()
        .filter(|value| !value.is_empty())
}

impl CommonArgs {
    /// Resolves the settings of `service`, applying its `SHOP_<SERVICE>_*` overrides.
    pub fn service(&self, service: &'static str) -> Result<ServiceSettings, SettingsError> {
        use secrecy::ExposeSecret;
        let port = match service_env(service, "PORT") {
            Some(raw) => raw.parse().map_err(|_| {
                SettingsError::Invalid(format!(
                    "SHOP_{}_PORT={raw} is not a port number",
                    service.to_uppercase()
                ))
            })?,
            None => default_port(service)
                .ok_or_else(|| SettingsError::Invalid(format!("no such service: {service}")))?,
        };
        let database_url = match service_env(service, "DATABASE_URL") {
            Some(url) => SecretString::from(url),
            None => SecretString::from(format!(
                "{}/shop_{service}",
                self.database_url.expose_secret().trim_end_matches('/')
            )),
        };
        let internal_token = match (&self.internal_token, &self.internal_token_file) {
            (Some(token), _) => token.clone(),
            (None, Some(path)) => read_secret_file(path)?,
            (None, None) => {
                return Err(SettingsError::Missing(format!(
                    "the {service} service needs SHOP_INTERNAL_TOKEN (the secret services use for \
                     /internal/* calls) or SHOP_INTERNAL_TOKEN_FILE; set the same value on every \
                     service, or run `shop serve` which generates one for all services in the process"
                )));
            }
        };
        if !crate::internal::strong_enough(&internal_token) {
            return Err(SettingsError::Invalid(format!(
                "the internal token (SHOP_INTERNAL_TOKEN or SHOP_INTERNAL_TOKEN_FILE) must be at \
                 least {} bytes; make one with `openssl rand -hex 32` or `shop secrets init DIR`",
                crate::internal::MIN_TOKEN_BYTES
            )));
        }
        Ok(ServiceSettings {
            name: service,
            listen: SocketAddr::new(self.host, port),
            database_url,
            database_pool_size: self.database_pool_size,
            redis_url: self.redis_url.clone(),
            amqp_url: self.amqp_url.clone(),
            internal_token,
            auth: self.auth_settings(),
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            broker_namespace: self.broker_namespace.clone(),
            connections: self.connection_limits(),
        })
    }

    /// How access tokens are checked.
    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            jwks_url: self.jwks_url.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
        }
    }

    /// The limits every listener of this process applies to its clients.
    pub fn connection_limits(&self) -> crate::http::ConnectionLimits {
        crate::http::ConnectionLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }

    /// The base URL the gateway and other services reach `service` at; a comma
    /// list names several replicas, used in turn.
    pub fn upstream_url(&self, service: &str) -> String {
        service_env(service, "URL").unwrap_or_else(|| {
            let host = if self.host.is_unspecified() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                self.host
            };
            let port = service_env(service, "PORT")
                .and_then(|raw| raw.parse().ok())
                .or_else(|| default_port(service))
                .unwrap_or(80);
            format!("http://{}", SocketAddr::new(host, port))
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::CommonArgs;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn with_token(token: &str) -> CommonArgs {
        Cli::try_parse_from(["shop", "--internal-token", token])
            .expect("flags parse")
            .common
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            super::redacted("redis://:s3cret@cache.internal:6380/2"),
            "redis://:***@cache.internal:6380/2"
        );
        assert_eq!(
            super::redacted("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert!(!super::redacted("not a url with s3cret").contains("s3cret"));
    }

    #[test]
    fn a_service_refuses_an_internal_token_shorter_than_32_bytes() {
        let short = with_token("a-short-secret").service("users");
        assert!(short.is_err_and(|err| err.to_string().contains("at least 32 bytes")));
        assert!(with_token(&"s".repeat(32)).service("users").is_ok());
    }
}
