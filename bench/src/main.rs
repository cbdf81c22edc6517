//! `shop-bench`: starts a release `shop serve` on scratch ports and a scratch
//! database, drives it over HTTP with many keep-alive connections, and prints
//! requests/s, latency percentiles, errors and the server's peak memory.

mod auth_figures;
mod ceilings;
mod cluster;
mod event_figures;
mod load;
mod orders_figures;
mod reviews_figures;
mod search_figures;
mod server;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::load::{Report, Target, run_load};
use crate::server::Server;

/// Concurrent customers in the single-item order scenarios the target names.
const ORDER_CLIENTS: usize = 16;
/// Products in the reviews scenario, and reviews of each (one first page).
const REVIEWED_PRODUCTS: usize = 50;
const REVIEWS_PER_PRODUCT: usize = 20;
/// Orders placed before the long-running scenario measures.
const HISTORY_ORDERS: usize = 100_000;

/// Benchmark the shop over HTTP.
#[derive(Debug, Parser)]
struct Args {
    /// The `shop` binary to run (default: next to this one).
    #[arg(long)]
    shop_bin: Option<std::path::PathBuf>,
    /// Seconds each load scenario runs.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent keep-alive connections per scenario.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Users to create before the read scenarios.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Products `shop seed` puts in the catalogue first.
    #[arg(long, default_value_t = 100_000)]
    products: usize,
    /// bcrypt cost the server is started with (its default is 12).
    #[arg(long, default_value_t = 12)]
    bcrypt_cost: u32,
    /// Only these groups of scenarios (users, products, reviews, orders, long-running, events, auth); all when empty.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[command(subcommand)]
    command: Option<BenchCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Two replicas of every service behind HAProxy, broken under load
    /// (SIGKILL, SIGTERM, PostgreSQL, Redis and RabbitMQ restarts), then audited.
    Cluster(cluster::ClusterArgs),
}

impl Args {
    /// Whether the scenarios of `group` run.
    fn runs(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shop_bin = match args.shop_bin.clone() {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary has a directory")?
            .join("shop"),
    };
    anyhow::ensure!(
        shop_bin.exists(),
        "{} not found; build it with `cargo build --release -p shop`",
        shop_bin.display()
    );
    if let Some(BenchCommand::Cluster(cluster)) = &args.command {
        return cluster::run(&shop_bin, cluster).await;
    }
    let server = Server::start(&shop_bin, args.bcrypt_cost, args.products).await?;
    println!(
        "shop seed --products {}: {:.1} s",
        args.products,
        server.seeded_in.as_secs_f64()
    );
    println!(
        "shop serve ready in {} ms on an existing database (pid {})",
        server.ready_in.as_millis(),
        server.pid()
    );

    let http = reqwest::Client::new();
    let gateway = server.gateway.clone();
    let login: Value = http
        .post(format!("{gateway}/auth/login"))
        .json(&json!({"username": server::ADMIN, "password": server::ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let admin = login["access_token"]
        .as_str()
        .with_context(|| format!("the bench admin cannot log in: {login}"))?
        .to_owned();

    let duration = Duration::from_secs(args.duration);
    // The database's own ceilings, beside which reads and writes are shown.
    let ceilings = if args.runs("users") || args.runs("orders") || args.runs("long-running") {
        let mut clients = vec![ORDER_CLIENTS, args.connections];
        clients.dedup();
        ceilings::Ceilings::measure(&clients, args.duration.min(10)).await
    } else {
        None
    };
    let share = |of: fn(&ceilings::Ceilings, f64, usize) -> String, rate: f64, clients: usize| {
        ceilings
            .as_ref()
            .map(|c| of(c, rate, clients))
            .unwrap_or_default()
    };
    if args.runs("users") {
        // POST /users with 1000 users, several times: latency of one whole batch.
        let mut batch_ms = Vec::new();
        let mut ids: Vec<Uuid> = Vec::new();
        let batches = args.users.div_ceil(1000).max(5);
        for batch in 0..batches {
            let body: Vec<Value> = (0..1000).map(|i| user(batch * 1000 + i)).collect();
            let started = Instant::now();
            let response = http
                .post(format!("{gateway}/users"))
                .bearer_auth(&admin)
                .json(&body)
                .send()
                .await?;
            let elapsed = started.elapsed();
            anyhow::ensure!(
                response.status() == 201,
                "POST /users answered {}",
                response.status()
            );
            let created: Vec<Value> = response.json().await?;
            ids.extend(
                created
                    .iter()
                    .filter_map(|u| u["user_id"].as_str()?.parse::<Uuid>().ok()),
            );
            batch_ms.push(elapsed.as_secs_f64() * 1000.0);
        }
        batch_ms.sort_by(f64::total_cmp);
        println!(
            "POST /users x1000 through the gateway: {} batches, median {:.1} ms, worst {:.1} ms",
            batch_ms.len(),
            batch_ms[batch_ms.len() / 2],
            batch_ms[batch_ms.len() - 1]
        );

        // The bulk load leaves a welcome mail per user for notifications to
        // take, a table with no statistics until autovacuum runs, and pages
        // waiting for a checkpoint: settle all three so the scenarios measure
        // the steady state.
        let caught_up = server::settle_bulk_load().await?;
        println!(
            "consumers caught up with the bulk load's events {:.1} s after it",
            caught_up.as_secs_f64()
        );

        let paths: Vec<String> = ids
            .iter()
            .take(5000)
            .map(|id| format!("/users/{id}"))
            .collect();
        println!("\n{}", Report::header());
        for clients in gateway_clients(args.connections) {
            direct_and_via_gateway(
                "GET /users/{id}",
                [&server.users, &gateway].map(|base| Target::new(base, paths.clone(), &admin)),
                clients,
                duration,
                // Only the direct read is one row from the database per request.
                |rate| share(ceilings::Ceilings::of_reads, rate, clients),
            )
            .await?;
        }
        let report = run_load(
            Target::new(
                &gateway,
                vec!["/users?country=DE&name=ser&sort=name&limit=20".to_owned()],
                &admin,
            ),
            args.connections,
            duration,
        )
        .await?;
        println!(
            "{}",
            report.row(
                "GET /users?country=DE&name=ser&sort=name&limit=20 via gateway",
                ""
            )
        );
        println!(
            "server RSS after the users scenarios: {:.1} MB (peak so far {:.1} MB)",
            server.rss_kb()? as f64 / 1024.0,
            server.peak_rss_kb()? as f64 / 1024.0
        );
    }

    if args.runs("products") {
        // Products: warm reads through the gateway, and search with two filters.
        let mut product_paths = Vec::new();
        let mut cursor: Option<String> = None;
        while product_paths.len() < 5000 {
            let url = match &cursor {
                Some(c) => format!("{gateway}/products?limit=100&cursor={c}"),
                None => format!("{gateway}/products?limit=100"),
            };
            let page: Value = http.get(url).send().await?.json().await?;
            for product in page["data"].as_array().context("a page of products")? {
                if let Some(id) = product["product_id"].as_str() {
                    product_paths.push(format!("/products/{id}"));
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        // One pass over every id warms the cache before the measured run.
        run_load(
            Target::new(&gateway, product_paths.clone(), &admin),
            8,
            Duration::from_secs(2),
        )
        .await?;
        let search = "/products?q=wireless&category=electronics&in_stock=true&limit=20";
        // Distinct price floors make every request a different question: no page-cache hits.
        let uncached: Vec<String> = (0..50_000)
            .map(|n| format!("/products?q=wireless&category=electronics&min_price={n}&limit=20"))
            .collect();
        let running: Vec<String> = (0..50_000)
            .map(|n| {
                format!(
                    "/products?q=running%20shoe&category=shoes&max_price={}&limit=20",
                    20_000 + n
                )
            })
            .collect();
        if !args.runs("users") {
            println!("\n{}", Report::header());
        }
        for clients in gateway_clients(args.connections) {
            direct_and_via_gateway(
                "GET /products/{id} warm cache",
                [&server.products, &gateway]
                    .map(|base| Target::new(base, product_paths.clone(), &admin)),
                clients,
                duration,
                |_| String::new(),
            )
            .await?;
        }
        let scenarios = [
            (
                "search q+2 filters, repeated (list cache) via gateway, 16 clients",
                Target::new(&gateway, vec![search.to_owned()], &admin),
                16,
            ),
            (
                "search q=wireless+2 filters, each request new, 16 clients",
                Target::new(&gateway, uncached, &admin),
                16,
            ),
            (
                "search q=running shoe+2 filters, each request new, 16 clients",
                Target::new(&gateway, running, &admin),
                16,
            ),
            (
                "search, 40 texts x changing filters, each new, 16 clients",
                Target::new(&gateway, search_figures::mixed(50_000), &admin),
                16,
            ),
            (
                "search q=wireless never seen before (cold), 16 clients",
                Target::new(
                    &gateway,
                    search_figures::never_seen("wireless", 50_000),
                    &admin,
                ),
                16,
            ),
        ];
        for (name, target, connections) in scenarios {
            let report = run_load(target, connections, duration).await?;
            println!("{}", report.row(name, ""));
        }
    }

    if args.runs("reviews") {
        // Reviews: a product's first page of reviews, read through the gateway.
        let seeding = Instant::now();
        let reviewed = reviews_figures::reviewed_products(
            &gateway,
            &admin,
            REVIEWED_PRODUCTS,
            REVIEWS_PER_PRODUCT,
        )
        .await?;
        println!(
            "\n{} reviews of {REVIEWED_PRODUCTS} products by {REVIEWS_PER_PRODUCT} customers, written through the gateway in {:.1} s",
            REVIEWED_PRODUCTS * REVIEWS_PER_PRODUCT,
            seeding.elapsed().as_secs_f64()
        );
        if !args.runs("users") && !args.runs("products") {
            println!("{}", Report::header());
        }
        let paths: Vec<String> = reviewed
            .iter()
            .map(|id| format!("/products/{id}/reviews"))
            .collect();
        let name = format!(
            "GET /products/{{id}}/reviews, {REVIEWS_PER_PRODUCT} a page, via gateway, {} clients",
            args.connections
        );
        let report = run_load(
            Target::new(&gateway, paths, &admin),
            args.connections,
            duration,
        )
        .await?;
        println!("{}", report.row(&name, ""));
        let (p50, p99, max) = reviews_figures::rating_latency(&gateway, &admin, 20, 200).await?;
        println!(
            "a review to its product's rating_average, through the gateway (200 reviews): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
        );
    }

    if args.runs("orders") {
        // Orders: single-item orders through the gateway, then one request of 1000.
        let bench_products = orders_figures::stocked_products(&gateway, &admin, 50).await?;
        let buyer = orders_figures::customer(&gateway).await?;
        let buyers = orders_figures::customers(&gateway, args.connections).await?;
        // The orders target is stated at 16 clients, like the search targets;
        // the run's own connection count shows how it holds up beyond that.
        let scenarios = [
            (
                "one item of 50 products",
                &bench_products[..],
                ORDER_CLIENTS,
            ),
            (
                "one item of 50 products",
                &bench_products[..],
                args.connections,
            ),
            (
                "one item, one hot product",
                &bench_products[..1],
                ORDER_CLIENTS,
            ),
        ];
        for (what, products, clients) in scenarios {
            let report = orders_figures::single_item_orders(
                &gateway,
                &buyers,
                products,
                clients,
                duration,
                Duration::from_secs(1),
            )
            .await?;
            let name = format!("POST /orders, {what}, via gateway, {clients} clients");
            let ratio = share(ceilings::Ceilings::of_writes, report.rate, clients);
            println!("{}", report.row(&name, &ratio));
        }
        let mut thousand = Vec::new();
        for _ in 0..5 {
            thousand
                .push(orders_figures::thousand_orders(&gateway, &buyer, &bench_products).await?);
        }
        thousand.sort_by(f64::total_cmp);
        println!(
            "POST /orders with 1000 orders via gateway: median {:.0} ms, worst {:.0} ms (5 requests)",
            thousand[2], thousand[4]
        );
        let (p50, p99, max) =
            orders_figures::cancel_to_stock(&gateway, &buyer, &bench_products[0], 100).await?;
        println!(
            "a cancelled order's stock, back in GET /products/{{id}} after the cancellation answered (100 orders): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
        );
        let (checked, sold, unbalanced) = orders_figures::oversell_check(&bench_products).await?;
        println!(
            "oversell check: {checked} products, {sold} units sold, {unbalanced} whose stock + sold differs from what was put in"
        );
    }

    if args.runs("long-running") {
        // Orders on an instance with history: 100,000 earlier orders, and the
        // mail backlog they leave (one confirmation a second goes out), then
        // a minute of single-item orders, reported per 10 s so a stall shows.
        let products = orders_figures::stocked_products(&gateway, &admin, 50).await?;
        let buyer = orders_figures::customer(&gateway).await?;
        let buyers = orders_figures::customers(&gateway, ORDER_CLIENTS).await?;
        let started = Instant::now();
        for _ in 0..HISTORY_ORDERS / 1000 {
            orders_figures::thousand_orders(&gateway, &buyer, &products).await?;
        }
        let placed_in = started.elapsed().as_secs_f64();
        let mails = server::queued(server::BROKER_NAMESPACE, &["notifications.events"]).await?;
        println!(
            "\nlong-running: {HISTORY_ORDERS} earlier orders placed in {placed_in:.0} s (1000 a request); {mails} mails waiting"
        );
        for window in 0..6 {
            let report = orders_figures::single_item_orders(
                &gateway,
                &buyers,
                &products,
                ORDER_CLIENTS,
                Duration::from_secs(10),
                Duration::ZERO,
            )
            .await?;
            let name = format!(
                "POST /orders, {} to {} s, {ORDER_CLIENTS} clients",
                window * 10,
                window * 10 + 10
            );
            let ratio = share(ceilings::Ceilings::of_writes, report.rate, ORDER_CLIENTS);
            println!("{}", report.row(&name, &ratio));
        }
        let waiting = server::queued(
            server::BROKER_NAMESPACE,
            &["notifications.events", "reviews.events", "products.events"],
        )
        .await?;
        println!("long-running: {waiting} events waiting for consumers after the minute");
    }

    if args.runs("events") {
        let (p50, p99, max) = event_figures::event_latency(&gateway, &admin, 200).await?;
        println!(
            "events, from the change to a consumer (200 user.registered): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
        );
    }

    if args.runs("auth") {
        // Auth: tokens from the real auth service from here on.
        let (warm, cold) = auth_figures::verification_cost().await?;
        println!(
            "\ntoken verification (signature, claims, revocation check with 20,000 revocations): {cold:.1} µs for a token not seen before, {warm:.2} µs for one seen before"
        );
        let ceiling = auth_figures::bcrypt_ceiling(args.bcrypt_cost, 8);
        let (logins, login_p99) = auth_figures::login_throughput(&gateway, duration).await?;
        println!(
            "bcrypt ceiling at cost {}: {ceiling:.1} hashes/s on all cores; logins through the gateway: {logins:.1}/s (p99 {login_p99:.0} ms) = {:.0}% of the ceiling",
            args.bcrypt_cost,
            100.0 * logins / ceiling
        );
        let revoked_ms = auth_figures::revocation_latency(&gateway, &server.users).await?;
        println!(
            "a logout is refused by the users service {revoked_ms:.1} ms after the logout answered"
        );
    }

    println!(
        "\nserver peak RSS: {:.1} MB (current {:.1} MB)",
        server.peak_rss_kb()? as f64 / 1024.0,
        server.rss_kb()? as f64 / 1024.0
    );
    server.stop().await;
    Ok(())
}

fn user(n: usize) -> Value {
    json!({
        "name": format!("Bench User {n}"),
        "email": format!("bench-{}-{n}@example.com", Uuid::now_v7().simple()),
        "phone": "+49 30 1234567",
        "address": {
            "line1": format!("Street {n}"),
            "city": "Berlin",
            "postal_code": "10115",
            "country": if n.is_multiple_of(3) { "DE" } else { "FR" }
        }
    })
}

/// The connection counts the gateway's cost is measured at.
fn gateway_clients(connections: usize) -> Vec<usize> {
    let mut clients = vec![16, connections];
    clients.dedup();
    clients
}

/// Loads `direct` and then `via_gateway` (the same requests) with `clients`
/// connections and prints both rows: the direct one with `direct_note` of its
/// rate, the gateway's with what it costs as a share of the direct rate.
async fn direct_and_via_gateway(
    name: &str,
    [direct, via_gateway]: [Target; 2],
    clients: usize,
    duration: Duration,
    direct_note: impl Fn(f64) -> String,
) -> anyhow::Result<()> {
    let straight = run_load(direct, clients, duration).await?;
    println!(
        "{}",
        straight.row(
            &format!("{name} direct, {clients} clients"),
            &direct_note(straight.rate)
        )
    );
    let gated = run_load(via_gateway, clients, duration).await?;
    let cost = (1.0 - gated.rate / straight.rate.max(1.0)) * 100.0;
    println!(
        "{}",
        gated.row(
            &format!("{name} via gateway, {clients} clients"),
            &format!("gateway costs {cost:.0} % of direct")
        )
    );
    Ok(())
}
