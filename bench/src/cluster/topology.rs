//! The cluster under test: two replicas of every service and two gateways,
//! each its own `shop serve <service>` process on its own loopback port,
//! behind HAProxy standing in for the Kubernetes Services (one frontend per
//! service, which the services call each other through) and the Ingress
//! (the gateways' frontend, which clients call). HAProxy checks `/readyz`
//! every half second and marks a replica down on its first refused
//! connection, as a readiness probe and endpoint removal would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

/// Every process kind, the gateway first; the index fixes its ports.
pub const SERVICES: [&str; 7] = [
    "gateway",
    "auth",
    "users",
    "products",
    "orders",
    "notifications",
    "reviews",
];
/// Replicas of each.
pub const REPLICAS: usize = 2;
/// Where clients reach the gateways (the Ingress).
pub const INGRESS: &str = "http://127.0.0.1:19080";
/// The cluster's own exchange and queues on the machine's RabbitMQ.
pub const NAMESPACE: &str = "cluster.";
/// The admin the traffic's staff logs in as.
pub const ADMIN: &str = "cluster-admin";
/// Its password.
pub const ADMIN_PASSWORD: &str = "cluster-admin-password";
/// HAProxy's frontend for service `index` (the Ingress for the gateway).
fn frontend_port(index: usize) -> u16 {
    19080 + index as u16
}

fn replica_port(index: usize, replica: usize) -> u16 {
    19100 + (index * 10 + replica) as u16
}

/// The database of `service` in the cluster.
pub fn database(service: &str) -> String {
    format!("cluster_{service}")
}

/// A URL of the cluster's database of `service`.
pub fn database_url(service: &str) -> String {
    format!("postgres://postgres@127.0.0.1:5432/{}", database(service))
}

struct Replica {
    service: &'static str,
    index: usize,
    replica: usize,
    child: Option<Child>,
}

/// The running cluster; dropping it kills every process.
pub struct Cluster {
    shop: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    replicas: Vec<Replica>,
    haproxy: Child,
    http: reqwest::Client,
}

impl Cluster {
    /// Scratch databases and queues, migrations, an admin, HAProxy, and
    /// every replica, waited for until each answers `/readyz`.
    pub async fn start(shop: &Path, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("logs"))?;
        let mail = dir.join("mail");
        std::fs::remove_dir_all(&mail).ok();
        std::fs::create_dir_all(&mail)?;
        reset_databases().await?;
        crate::server::delete_queues(NAMESPACE).await?;
        let env = environment(&mail);
        run_once(shop, &env, &["migrate"]).await?;
        run_once(
            shop,
            &env,
            &[
                "admin",
                "create",
                "--username",
                ADMIN,
                "--email",
                "cluster-admin@example.com",
                "--password",
                ADMIN_PASSWORD,
            ],
        )
        .await?;
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, haproxy_config())?;
        let haproxy = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&config)
            .stdout(log_file(dir, "haproxy")?)
            .stderr(log_file(dir, "haproxy")?)
            .kill_on_drop(true)
            .spawn()
            .context("starting haproxy (apt-get install haproxy)")?;
        let mut cluster = Self {
            shop: shop.to_owned(),
            dir: dir.to_owned(),
            env,
            replicas: Vec::new(),
            haproxy,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
        };
        for (index, service) in SERVICES.iter().enumerate() {
            for replica in 0..REPLICAS {
                cluster.replicas.push(Replica {
                    service,
                    index,
                    replica,
                    child: None,
                });
            }
        }
        for slot in 0..cluster.replicas.len() {
            cluster.spawn(slot)?;
        }
        for slot in 0..cluster.replicas.len() {
            cluster.wait_ready(slot).await?;
        }
        // And HAProxy has seen them all up (rise 2 at 500 ms).
        for index in 0..SERVICES.len() {
            let url = format!("http://127.0.0.1:{}/readyz", frontend_port(index));
            wait_for(&cluster.http, &url, Duration::from_secs(20)).await?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(cluster)
    }

    fn slot(&self, service: &str, replica: usize) -> usize {
        self.replicas
            .iter()
            .position(|r| r.service == service && r.replica == replica)
            .expect("every service has its replicas")
    }

    fn spawn(&mut self, slot: usize) -> anyhow::Result<()> {
        let Replica {
            service,
            index,
            replica,
            ..
        } = self.replicas[slot];
        let name = format!("{service}-{replica}");
        let child = Command::new(&self.shop)
            .args(["serve", service])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                format!("SHOP_{}_PORT", service.to_uppercase()),
                replica_port(index, replica).to_string(),
            )
            .stdout(log_file(&self.dir, &name)?)
            .stderr(log_file(&self.dir, &name)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.replicas[slot].child = Some(child);
        Ok(())
    }

    async fn wait_ready(&self, slot: usize) -> anyhow::Result<()> {
        let Replica {
            service,
            index,
            replica,
            ..
        } = self.replicas[slot];
        let url = format!("http://127.0.0.1:{}/readyz", replica_port(index, replica));
        wait_for(&self.http, &url, Duration::from_secs(30))
            .await
            .with_context(|| format!("{service}-{replica} did not become ready"))
    }

    /// SIGKILLs a replica: no drain, requests in flight on it are cut.
    pub async fn kill(&mut self, service: &str, replica: usize) {
        let slot = self.slot(service, replica);
        if let Some(mut child) = self.replicas[slot].child.take() {
            child.start_kill().ok();
            child.wait().await.ok();
        }
    }

    /// SIGTERMs a replica and waits until it has drained and exited.
    pub async fn terminate(&mut self, service: &str, replica: usize) -> anyhow::Result<Duration> {
        let slot = self.slot(service, replica);
        let Some(mut child) = self.replicas[slot].child.take() else {
            return Ok(Duration::ZERO);
        };
        let started = Instant::now();
        if let Some(pid) = child.id() {
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await?;
        }
        match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
            Ok(_) => Ok(started.elapsed()),
            Err(_) => {
                child.start_kill().ok();
                anyhow::bail!("{service}-{replica} did not stop within 60 s of SIGTERM")
            }
        }
    }

    /// Starts a stopped replica again and waits until it is ready.
    pub async fn restart(&mut self, service: &str, replica: usize) -> anyhow::Result<()> {
        let slot = self.slot(service, replica);
        self.spawn(slot)?;
        self.wait_ready(slot).await
    }

    /// Replicas that died on their own (not killed by the test).
    pub fn crashed(&mut self) -> Vec<String> {
        let mut dead = Vec::new();
        for replica in &mut self.replicas {
            if let Some(child) = replica.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                dead.push(format!(
                    "{}-{} exited with {status}",
                    replica.service, replica.replica
                ));
            }
        }
        dead
    }

    /// The directory mail files are written to.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.join("mail")
    }

    /// Stops everything.
    pub async fn stop(mut self) {
        for replica in &mut self.replicas {
            if let Some(child) = replica.child.as_mut() {
                child.start_kill().ok();
                child.wait().await.ok();
            }
        }
        self.haproxy.start_kill().ok();
        self.haproxy.wait().await.ok();
    }
}

/// Settings every replica shares: HAProxy's frontends as the other services'
/// addresses, the scratch databases, a fast mail pace so the audit need not
/// wait a second per mail, and short holds so an orphaned one shows.
fn environment(mail: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("SHOP_BROKER_NAMESPACE".into(), NAMESPACE.into()),
        // Every simulated customer comes from 127.0.0.1 and the staff is one
        // admin doing everyone's work: they would spend any budget at once.
        ("SHOP_RATE_LIMIT_READS".into(), "0".into()),
        // Two gateways on one host: no shared operator port.
        ("SHOP_GATEWAY_OPS_PORT".into(), "0".into()),
        ("SHOP_RATE_LIMIT_WRITES".into(), "0".into()),
        ("SHOP_RATE_LIMIT_AUTH".into(), "0".into()),
        ("SHOP_RATE_LIMIT_REGISTRATIONS".into(), "0".into()),
        (
            "SHOP_INTERNAL_TOKEN".into(),
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        ),
        (
            "SHOP_JWKS_URL".into(),
            format!("http://127.0.0.1:{}/auth/jwks", frontend_port(1)),
        ),
        ("SHOP_MAIL_DIR".into(), mail.display().to_string()),
        ("SHOP_MAIL_INTERVAL_MS".into(), "5".into()),
        ("SHOP_AUTH_BCRYPT_COST".into(), "4".into()),
        ("SHOP_AUTH_ACCESS_TTL_SECS".into(), "3600".into()),
        ("SHOP_PRODUCTS_RESERVATION_TTL_SECS".into(), "30".into()),
        ("SHOP_PRODUCTS_EXPIRY_INTERVAL_SECS".into(), "2".into()),
        ("SHOP_SHUTDOWN_DRAIN_SECS".into(), "3".into()),
        ("SHOP_DATABASE_POOL_SIZE".into(), "4".into()),
        ("SHOP_LOG_FORMAT".into(), "text".into()),
        ("RUST_LOG".into(), "warn".into()),
    ];
    for (index, service) in SERVICES.iter().enumerate() {
        let upper = service.to_uppercase();
        env.push((
            format!("SHOP_{upper}_URL"),
            format!("http://127.0.0.1:{}", frontend_port(index)),
        ));
        env.push((format!("SHOP_{upper}_DATABASE_URL"), database_url(service)));
    }
    env
}

fn haproxy_config() -> String {
    let mut config = String::from(
        "global
    maxconn 4096
    log stdout format raw local0

defaults
    mode http
    # Only failed or abnormal requests are logged, with HAProxy's own
    # account of who ended them (logs/haproxy.log).
    log global
    option httplog
    option dontlog-normal
    timeout connect 2s
    # Idle keep-alive connections outlive the clients' pools (reqwest's 90 s,
    # the gateway's 60 s), so a client never sends on one HAProxy is closing.
    timeout client 120s
    timeout server 60s
    timeout http-keep-alive 120s
    option http-keep-alive
    # A connection that cannot be made is tried on the other replica; a
    # request that reached a replica is never sent twice (the client decides).
    retries 3
    retry-on conn-failure
    option redispatch 1
    default-server inter 500ms fastinter 250ms downinter 500ms rise 2 fall 2 observe layer4 error-limit 1 on-error mark-down

",
    );
    for (index, service) in SERVICES.iter().enumerate() {
        config.push_str(&format!(
            "frontend {service}\n    bind 127.0.0.1:{}\n    default_backend {service}\n\n\
             backend {service}\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n",
            frontend_port(index)
        ));
        for replica in 0..REPLICAS {
            config.push_str(&format!(
                "    server {service}-{replica} 127.0.0.1:{} check\n",
                replica_port(index, replica)
            ));
        }
        config.push('\n');
    }
    config
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<Stdio> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("logs").join(format!("{name}.log")))?;
    Ok(Stdio::from(file))
}

async fn run_once(shop: &Path, env: &[(String, String)], args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(shop)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "shop {} failed", args.join(" "));
    Ok(())
}

async fn wait_for(http: &reqwest::Client, url: &str, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{url} not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reset_databases() -> anyhow::Result<()> {
    for service in SERVICES.iter().filter(|s| **s != "gateway") {
        let status = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                database(service)
            ))
            .stdout(Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "cannot drop {}", database(service));
    }
    Ok(())
}
