//! `shop`: runs the whole system in one process, or one service of it, and
//! the operational commands around it.

mod admin;
mod container;
mod serve;

use clap::{Parser, Subcommand, ValueEnum};
use platform::settings::CommonArgs;

// Request handling allocates many small, short-lived buffers; mimalloc serves
// them with less contention than the system allocator. Heap profilers that
// hook malloc (heaptrack) see nothing through it: build with
// `--features system-allocator` to profile.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Per-service overrides, listed in `--help` because clap cannot derive them.
const SERVICE_SETTINGS: &str = "\
Per-service settings (environment only; <SERVICE> is GATEWAY, AUTH, USERS, PRODUCTS, ORDERS, NOTIFICATIONS or REVIEWS):
  SHOP_<SERVICE>_PORT          port the service listens on (gateway 8080, auth 8081, users 8082,
                               products 8083, orders 8084, notifications 8085, reviews 8086)
  SHOP_<SERVICE>_DATABASE_URL  the service's own database (default: SHOP_DATABASE_URL/shop_<service>)
  SHOP_<SERVICE>_URL           where the gateway and other services reach it (default: http://SHOP_HOST:port)
  SHOP_GATEWAY_OPS_PORT        the gateway's operator port: /metrics, /healthz, /readyz (default 9080; 0: none)
  RUST_LOG                     log filter, such as `info` or `users=debug` (default: info)

Swagger UI for the whole API is at http://127.0.0.1:8080/docs once `shop serve` runs.";

/// The shop e-commerce backend.
#[derive(Debug, Parser)]
#[command(name = "shop", version, about, after_long_help = SERVICE_SETTINGS, after_help = SERVICE_SETTINGS)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    auth: auth::AuthArgs,
    #[command(flatten)]
    products: products::ProductsArgs,
    #[command(flatten)]
    notifications: notifications::NotificationsArgs,
    #[command(flatten)]
    orders: orders::OrdersArgs,
    #[command(flatten)]
    rate_limits: gateway::RateLimits,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service and the gateway in this process (each on its own port,
    /// the gateway on 8080), or only the named one.
    Serve {
        /// Run only this service.
        service: Option<Service>,
    },
    /// Create (if missing) and migrate the databases of every service, or of the named one, then exit.
    Migrate {
        /// Migrate only this service's database.
        service: Option<Service>,
    },
    /// Administration.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Fill the catalogue with varied, realistic demo products (no events are sent for them).
    Seed {
        /// How many products to add.
        #[arg(long, default_value_t = 1000)]
        products: usize,
    },
    /// Auth service maintenance.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Event plumbing.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The mail queue.
    #[command(subcommand)]
    Mail(MailCommand),
    /// GET a URL and exit 0 if it answers 2xx, 1 otherwise: a container
    /// health check that needs no shell or curl in the image.
    Probe {
        /// Such as http://127.0.0.1:8080/readyz.
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 2)]
        timeout: u64,
    },
    /// Secrets a deployment shares.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Write a random internal token to DIR/internal_token unless one is
    /// there, for SHOP_INTERNAL_TOKEN_FILE (compose's one-shot secrets service).
    Init {
        /// Directory of the secret files.
        dir: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an admin with a login; running it again for the same username changes nothing.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Password; read from standard input when omitted.
        #[arg(long)]
        password: Option<String>,
        /// Display name (default: the username).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Move every message in the dead letter queue (`shop.events.dlq`) back
    /// to the queue it came from, for another round of attempts.
    ReplayDlq,
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// Put every mail marked `failed` after its last attempt (not those of
    /// deleted users) back in the queue with fresh attempts, once the mail
    /// server is fixed.
    RetryFailed,
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Delete expired refresh tokens once (for a Kubernetes CronJob).
    PurgeExpired,
    /// Add a new signing key; older keys keep verifying until their tokens expire.
    RotateKey,
}

/// A part of the system `shop serve` can run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// The gateway: the public API on one port.
    Gateway,
    /// Registration, login, tokens.
    Auth,
    /// User profiles.
    Users,
    /// The catalogue and its stock.
    Products,
    /// Orders and purchase history.
    Orders,
    /// Mail on events.
    Notifications,
    /// Product reviews.
    Reviews,
}

impl Service {
    /// Every service with a database, in start order.
    pub const WITH_DATABASE: &'static [Service] = &[
        Service::Users,
        Service::Auth,
        Service::Products,
        Service::Orders,
        Service::Notifications,
        Service::Reviews,
    ];
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    platform::telemetry::init(cli.common.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("shop: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { service } => {
                let own = serve::ServiceArgs {
                    auth: cli.auth,
                    products: cli.products,
                    notifications: cli.notifications,
                    orders: cli.orders,
                    rate_limits: cli.rate_limits,
                };
                serve::serve(cli.common, own, service).await
            }
            Command::Events(EventsCommand::ReplayDlq) => {
                admin::replay_dead_letters(&cli.common).await
            }
            Command::Mail(MailCommand::RetryFailed) => admin::retry_failed_mail(&cli.common).await,
            Command::Seed { products } => admin::seed(&cli.common, products).await,
            Command::Migrate { service } => serve::migrate(cli.common, service).await,
            Command::Admin(AdminCommand::Create {
                username,
                email,
                password,
                name,
            }) => {
                admin::create_admin(
                    &cli.common,
                    username,
                    email,
                    password,
                    name,
                    cli.auth.bcrypt_cost,
                )
                .await
            }
            Command::Auth(AuthCommand::PurgeExpired) => admin::purge_expired(&cli.common).await,
            Command::Auth(AuthCommand::RotateKey) => admin::rotate_key(&cli.common).await,
            Command::Probe { url, timeout } => {
                container::probe(&url, std::time::Duration::from_secs(timeout)).await
            }
            Command::Secrets(SecretsCommand::Init { dir }) => container::init_secrets(&dir),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "shop stopped");
            eprintln!("shop: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
