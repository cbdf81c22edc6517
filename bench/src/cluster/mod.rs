//! `shop-bench cluster`: the many-replicas rules of the architecture, shown
//! by breaking things. Two replicas of every service and two gateways run
//! behind HAProxy while a steady mix of customers and staff uses the shop;
//! meanwhile one replica of every service is SIGKILLed and started again,
//! the other is SIGTERMed (a rolling restart), and PostgreSQL, Redis and
//! RabbitMQ are restarted in turn. Each phase prints its requests, failures
//! by kind and p99; then the data is audited, and the last line reads
//! `cluster: R requests, F failed, L lost, D duplicated`.

mod audit;
mod topology;
mod traffic;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::process::Command;
use uuid::Uuid;

use crate::load::{Target, run_load};
use crate::orders_figures;
use topology::{ADMIN, ADMIN_PASSWORD, Cluster, INGRESS, SERVICES};
use traffic::Traffic;

/// Warm-up of the throughput comparisons, as in the bench's own scenarios.
const WARMUP: Duration = Duration::from_secs(1);

/// Options of the cluster test.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Concurrent customers in the mix (staff are two more).
    #[arg(long, default_value_t = 12)]
    pub clients: usize,
    /// Seconds of steady traffic in each phase, after its fault.
    #[arg(long, default_value_t = 8)]
    pub phase_secs: u64,
    /// Leave PostgreSQL, Redis and RabbitMQ alone (they are the machine's, shared).
    #[arg(long)]
    pub no_infra_restarts: bool,
    /// Then measure product reads and orders through the cluster and through
    /// one `shop serve`, for the cost of the extra hops.
    #[arg(long)]
    pub compare: bool,
}

/// Units of each product at the start.
const STOCK: i64 = 400;

/// Runs the cluster test with the `shop` binary at `shop`.
pub async fn run(shop: &Path, args: &ClusterArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("shop-cluster");
    let started = Instant::now();
    let mut cluster = Cluster::start(shop, &dir).await?;
    println!(
        "cluster: {} services x 2 replicas behind HAProxy, ready in {:.1} s (logs in {})",
        SERVICES.len(),
        started.elapsed().as_secs_f64(),
        dir.join("logs").display()
    );
    let admin = login_admin().await?;
    let (products, initial_stock) = stock_the_shop(&admin).await?;

    let traffic = Traffic::new(products.clone(), admin.clone(), "steady");
    let mut clients = Vec::new();
    for n in 0..args.clients {
        clients.push(tokio::spawn(
            traffic.clone().customer(0x9e37_79b9 + n as u64),
        ));
    }
    for n in 0..2 {
        clients.push(tokio::spawn(traffic.clone().staff(0x51ed_270b + n)));
    }
    let load_started = Instant::now();
    let steady = Duration::from_secs(args.phase_secs);
    tokio::time::sleep(steady).await;

    traffic.begin("SIGKILL one replica of each");
    for service in SERVICES {
        cluster.kill(service, 0).await;
    }
    // Down long enough for HAProxy to notice, as a crash-looping pod would be.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for service in SERVICES {
        cluster.restart(service, 0).await?;
    }
    tokio::time::sleep(steady / 2).await;

    traffic.begin("SIGTERM the other (rolling restart)");
    for service in SERVICES {
        let drained = cluster.terminate(service, 1).await?;
        println!(
            "  {service}-1 stopped {:.1} s after SIGTERM",
            drained.as_secs_f64()
        );
        cluster.restart(service, 1).await?;
        // Let HAProxy see it up (rise 2) before the next one goes.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    tokio::time::sleep(steady / 2).await;

    if !args.no_infra_restarts {
        for (phase, dependency) in [
            ("PostgreSQL restart", Dependency::Postgres),
            ("Redis restart", Dependency::Redis),
            ("RabbitMQ restart", Dependency::RabbitMq),
        ] {
            traffic.begin(phase);
            let down = dependency.restart().await?;
            println!("  {phase}: away {:.1} s", down.as_secs_f64());
            tokio::time::sleep(steady).await;
        }
    }
    traffic.begin("steady again");
    tokio::time::sleep(steady).await;
    traffic.stop();
    for client in clients {
        client.await.ok();
    }
    let load_secs = load_started.elapsed().as_secs_f64();
    let crashed = cluster.crashed();

    println!(
        "\nphases ({load_secs:.0} s of load, {} customers, 2 staff):",
        args.clients
    );
    let phases = traffic.phases();
    let (mut requests, mut failed) = (0, 0);
    for phase in &phases {
        println!("  {}", phase.line());
        for sample in phase.samples() {
            println!("      e.g. {}", truncate(&sample, 300));
        }
        requests += phase.requests();
        failed += phase.failed();
    }
    for line in &crashed {
        println!("  crashed on its own: {line}");
    }

    let ledger = traffic.ledger.lock().await;
    let findings = audit::audit(
        &ledger,
        &initial_stock,
        &cluster.mail_dir(),
        Duration::from_secs(180),
    )
    .await?;
    drop(ledger);
    println!("\naudit:");
    for line in &findings.passed {
        println!("  ok: {line}");
    }
    for line in &findings.problems {
        println!("  PROBLEM: {line}");
    }
    println!("  oversold: {} units", findings.oversold);

    if args.compare {
        compare(shop, &admin, &products).await?;
    }
    cluster.stop().await;
    println!(
        "cluster: {requests} requests, {failed} failed, {} lost, {} duplicated",
        findings.lost, findings.duplicated
    );
    Ok(())
}

async fn login_admin() -> anyhow::Result<String> {
    let login: Value = reqwest::Client::new()
        .post(format!("{INGRESS}/auth/login"))
        .json(&json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    login["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the cluster admin cannot log in: {login}"))
}

/// Twenty products the mix buys and searches, with their stock at the start.
async fn stock_the_shop(admin: &str) -> anyhow::Result<(Vec<Uuid>, HashMap<Uuid, i64>)> {
    let kinds = ["Sturdy Oak Lamp", "Reading Lamp", "Oak Chair", "Desk Chair"];
    let items: Vec<Value> = (0..20)
        .map(|i| {
            json!({
                "sku": format!("CLUSTER-{}", Uuid::now_v7().simple()),
                "name": format!("{} {i}", kinds[i % kinds.len()]),
                "description": "Sold while the cluster is being broken.",
                "price_cents": 1500 + 100 * i as i64,
                "currency": "EUR",
                "stock": STOCK,
                "category": "home",
                "tags": ["cluster"],
            })
        })
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{INGRESS}/products"))
        .bearer_auth(admin)
        .json(&items)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 201,
        "creating products answered {}",
        response.status()
    );
    let created: Vec<Value> = response.json().await?;
    let ids: Vec<Uuid> = created
        .iter()
        .filter_map(|p| p["product_id"].as_str()?.parse().ok())
        .collect();
    let stock = ids.iter().map(|id| (*id, STOCK)).collect();
    Ok((ids, stock))
}

/// A shared dependency the test restarts, with the machine's own commands.
enum Dependency {
    Postgres,
    Redis,
    RabbitMq,
}

impl Dependency {
    /// Restarts it and returns how long it was away.
    async fn restart(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        match self {
            Self::Postgres => {
                let version = std::fs::read_dir("/etc/postgresql")?
                    .filter_map(|entry| entry.ok())
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .next()
                    .context("no cluster under /etc/postgresql")?;
                shell(&format!(
                    "pg_ctlcluster --skip-systemctl-redirect {version} main restart"
                ))
                .await?;
                wait_port(5432).await?;
            }
            Self::Redis => {
                shell("redis-cli -p 6379 shutdown nosave || true").await?;
                shell(
                    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' \
                     --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
                )
                .await?;
                wait_port(6379).await?;
            }
            Self::RabbitMq => {
                // The broker application restarts inside its node: every
                // connection is closed and must be made again, as after a
                // broker pod restart; durable queues keep their messages.
                shell("rabbitmqctl -q stop_app && rabbitmqctl -q start_app").await?;
                wait_port(5672).await?;
            }
        }
        Ok(started.elapsed())
    }
}

async fn shell(command: &str) -> anyhow::Result<()> {
    let status = Command::new("sh")
        .args(["-c", command])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "`{command}` failed");
    Ok(())
}

async fn wait_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "port {port} did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Product reads and single-item orders, 16 connections, 10 s each: through
/// the cluster's HAProxy and through one `shop serve`.
async fn compare(shop: &Path, admin: &str, products: &[Uuid]) -> anyhow::Result<()> {
    let duration = Duration::from_secs(10);
    let paths: Vec<String> = products
        .iter()
        .map(|id| format!("/products/{id}"))
        .collect();
    let reads = run_load(Target::new(INGRESS, paths, admin), 16, duration).await?;
    let customer = orders_figures::customer(INGRESS).await?;
    let stocked = orders_figures::stocked_products(INGRESS, admin, 20).await?;
    let orders = orders_figures::single_item_orders(
        INGRESS,
        std::slice::from_ref(&customer),
        &stocked,
        16,
        duration,
        WARMUP,
    )
    .await?;

    let server = crate::server::Server::start(shop, 4, 1000).await?;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/auth/login", server.gateway))
        .json(&json!({"username": crate::server::ADMIN, "password": crate::server::ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let one_admin = login["access_token"]
        .as_str()
        .context("bench admin token")?;
    let one_stocked = orders_figures::stocked_products(&server.gateway, one_admin, 20).await?;
    let one_paths: Vec<String> = one_stocked
        .iter()
        .map(|id| format!("/products/{id}"))
        .collect();
    let one_reads = run_load(
        Target::new(&server.gateway, one_paths, one_admin),
        16,
        duration,
    )
    .await?;
    let one_customer = orders_figures::customer(&server.gateway).await?;
    let one_orders = orders_figures::single_item_orders(
        &server.gateway,
        std::slice::from_ref(&one_customer),
        &one_stocked,
        16,
        duration,
        WARMUP,
    )
    .await?;
    server.stop().await;
    println!("\nthroughput, 16 connections, 10 s each (cluster / shop serve):");
    for (what, cluster, one) in [
        ("GET /products/{id}", &reads, &one_reads),
        ("single-item POST /orders", &orders, &one_orders),
    ] {
        println!(
            "  {what:<26} {:>8.0}/s p99 {:>6.1} ms   vs {:>8.0}/s p99 {:>6.1} ms   ratio {:.2}",
            cluster.rate,
            cluster.p99_ms,
            one.rate,
            one.p99_ms,
            cluster.rate / one.rate.max(1.0)
        );
    }
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
