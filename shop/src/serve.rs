//! `shop serve` and `shop migrate`: wiring the service crates together.

use platform::settings::CommonArgs;
use tokio::task::JoinSet;

use crate::Service;

/// Each service's own settings.
#[derive(Debug, Clone)]
pub struct ServiceArgs {
    /// Auth's.
    pub auth: auth::AuthArgs,
    /// Products'.
    pub products: products::ProductsArgs,
    /// Notifications'.
    pub notifications: notifications::NotificationsArgs,
    /// Orders'.
    pub orders: orders::OrdersArgs,
    /// The gateway's budgets.
    pub rate_limits: gateway::RateLimits,
}

/// Runs the named service, or all of them with the gateway, until SIGTERM or Ctrl-C.
pub async fn serve(
    mut common: CommonArgs,
    own: ServiceArgs,
    only: Option<Service>,
) -> anyhow::Result<()> {
    let shutdown =
        platform::shutdown::on_signal(std::time::Duration::from_secs(common.shutdown_drain_secs));
    let services: Vec<Service> = match only {
        Some(service) => vec![service],
        None => {
            if common.internal_token.is_none() && common.internal_token_file.is_none() {
                // One process, one secret: every service in it shares this one.
                common.internal_token = Some(crate::container::new_internal_token());
            }
            vec![
                Service::Users,
                Service::Auth,
                Service::Products,
                Service::Orders,
                Service::Notifications,
                Service::Reviews,
                Service::Gateway,
            ]
        }
    };
    let mut tasks = JoinSet::new();
    for service in services {
        let stop = shutdown.clone();
        match service {
            Service::Gateway => {
                let settings = gateway::Settings::from_args(&common, own.rate_limits)?;
                tasks.spawn(async move { ("gateway", gateway::run(settings, stop).await) });
            }
            Service::Users => {
                let settings = common.service(users::NAME)?;
                tasks.spawn(async move { ("users", users::run(settings, stop).await) });
            }
            Service::Auth => {
                let settings = auth::Settings {
                    service: common.service(auth::NAME)?,
                    auth: own.auth.clone(),
                    users_url: common.upstream_url(users::NAME),
                };
                tasks.spawn(async move { ("auth", auth::run(settings, stop).await) });
            }
            Service::Products => {
                let settings = products::Settings {
                    service: common.service(products::NAME)?,
                    products: own.products.clone(),
                    orders_url: common.upstream_url(orders::NAME),
                };
                tasks.spawn(async move { ("products", products::run(settings, stop).await) });
            }
            Service::Orders => {
                let settings = orders::Settings {
                    service: common.service(orders::NAME)?,
                    products_url: common.upstream_url(products::NAME),
                    users_url: common.upstream_url(users::NAME),
                    orders: own.orders,
                };
                tasks.spawn(async move { ("orders", orders::run(settings, stop).await) });
            }
            Service::Reviews => {
                let settings = reviews::Settings {
                    service: common.service(reviews::NAME)?,
                    products_url: common.upstream_url(products::NAME),
                    users_url: common.upstream_url(users::NAME),
                };
                tasks.spawn(async move { ("reviews", reviews::run(settings, stop).await) });
            }
            Service::Notifications => {
                let settings = notifications::Settings {
                    service: common.service(notifications::NAME)?,
                    notifications: own.notifications.clone(),
                };
                tasks.spawn(
                    async move { ("notifications", notifications::run(settings, stop).await) },
                );
            }
        }
    }
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(err))) => {
                // One service down means the process is not what was asked for: stop all.
                failure.get_or_insert(anyhow::anyhow!("{name}: {err:#}"));
            }
            Err(panic) => {
                failure.get_or_insert(anyhow::anyhow!("a service task failed: {panic}"));
            }
        }
        // Whatever ended first, the others stop with it.
        shutdown.cancel();
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Settings for commands that touch databases but make no internal calls.
pub fn offline(common: &CommonArgs) -> CommonArgs {
    let mut common = common.clone();
    common
        .internal_token
        .get_or_insert_with(crate::container::new_internal_token);
    common
}

/// Creates and migrates the databases, then exits.
pub async fn migrate(common: CommonArgs, only: Option<Service>) -> anyhow::Result<()> {
    let common = offline(&common);
    let services: Vec<Service> = match only {
        Some(service) => vec![service],
        None => Service::WITH_DATABASE.to_vec(),
    };
    for service in services {
        let (name, migrations) = match service {
            Service::Gateway => {
                println!("gateway: has no database");
                continue;
            }
            Service::Users => (users::NAME, users::migrations()),
            Service::Auth => (auth::NAME, auth::migrations()),
            Service::Products => (products::NAME, products::migrations()),
            Service::Orders => (orders::NAME, orders::migrations()),
            Service::Notifications => (notifications::NAME, notifications::migrations()),
            Service::Reviews => (reviews::NAME, reviews::migrations()),
        };
        let settings = common.service(name)?;
        platform::db::connect_and_migrate(&settings.database_url, 1, migrations).await?;
        println!("{name}: database migrated");
    }
    Ok(())
}
