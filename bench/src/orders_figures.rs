//! Orders figures: single-item orders through the gateway, a 1000-order
//! request, how soon a cancelled order's stock is back, and an oversell
//! check over everything sold.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::process::Command;
use uuid::Uuid;

use crate::load::{Report, Target, run_load_with_warmup};

const STOCK: i64 = 1_000_000;

/// Products the order scenarios buy from, each with plenty of stock.
pub async fn stocked_products(
    gateway: &str,
    admin: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let items: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "sku": format!("BENCH-{}", Uuid::now_v7().simple()),
                "name": format!("Bench Item {i}"),
                "description": "Bought by the benchmark.",
                "price_cents": 1999,
                "currency": "EUR",
                "stock": STOCK,
                "category": "bench"
            })
        })
        .collect();
    let created: Vec<Value> = http
        .post(format!("{gateway}/products"))
        .bearer_auth(admin)
        .json(&items)
        .send()
        .await?
        .json()
        .await?;
    created
        .iter()
        .map(|p| {
            p["product_id"]
                .as_str()
                .map(str::to_owned)
                .context("a product id")
        })
        .collect()
}

/// A registered customer's access token.
pub async fn customer(gateway: &str) -> anyhow::Result<String> {
    let (_, registered) = register(gateway, "buyer").await?;
    registered["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("registering a customer: {registered}"))
}

/// Access tokens of `count` new customers: the order scenarios' connections
/// each order as one of them, as a shop's customers do (one customer's
/// events are handled in order, one after another, by every consumer).
pub async fn customers(gateway: &str, count: usize) -> anyhow::Result<Vec<String>> {
    futures::future::try_join_all((0..count).map(|_| customer(gateway))).await
}

/// The password of every account the bench registers.
pub const PASSWORD: &str = "bench-password-1";

/// Registers a new customer named `prefix` and a random tail; its username
/// and what `POST /auth/register` answered (201, or an error).
pub async fn register(gateway: &str, prefix: &str) -> anyhow::Result<(String, Value)> {
    let username = format!("{prefix}{}", &Uuid::now_v7().simple().to_string()[20..]);
    let response = reqwest::Client::new()
        .post(format!("{gateway}/auth/register"))
        .json(&json!({
            "username": username,
            "password": PASSWORD,
            "email": format!("{username}@example.com"),
            "name": "Bench"
        }))
        .send()
        .await?;
    let status = response.status();
    let registered: Value = response.json().await?;
    anyhow::ensure!(status == 201, "register answered {status}: {registered}");
    Ok((username, registered))
}

fn address() -> Value {
    json!({"line1": "1 Bench Road", "city": "Leeds", "postal_code": "LS1", "country": "GB"})
}

/// Single-item orders through the gateway for `duration` after `warmup`,
/// spread over `products`, each connection ordering as the next of `buyers`.
pub async fn single_item_orders(
    gateway: &str,
    buyers: &[String],
    products: &[String],
    connections: usize,
    duration: Duration,
    warmup: Duration,
) -> anyhow::Result<Report> {
    let bodies: Vec<Value> = products
        .iter()
        .map(|product| json!([{ "items": [{"product_id": product, "quantity": 1}], "shipping_address": address() }]))
        .collect();
    let target = Target::posts(gateway, "/orders", &bodies, None).sent_by_each_of(buyers);
    run_load_with_warmup(target, connections, duration, warmup).await
}

/// Milliseconds for one `POST /orders` carrying 1000 orders.
pub async fn thousand_orders(
    gateway: &str,
    token: &str,
    products: &[String],
) -> anyhow::Result<f64> {
    let orders: Vec<Value> = (0..1000)
        .map(|i| {
            json!({
                "items": [{"product_id": products[i % products.len()], "quantity": 1}],
                "shipping_address": address()
            })
        })
        .collect();
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{gateway}/orders"))
        .bearer_auth(token)
        .json(&orders)
        .send()
        .await?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        response.status() == 201,
        "POST /orders x1000 answered {}",
        response.status()
    );
    Ok(elapsed)
}

async fn stock_of(http: &reqwest::Client, gateway: &str, product: &str) -> anyhow::Result<i64> {
    let product: Value = http
        .get(format!("{gateway}/products/{product}"))
        .send()
        .await?
        .json()
        .await?;
    product["stock"].as_i64().context("a stock figure")
}

/// Milliseconds from a cancellation's answer until `GET /products/{id}`
/// through the gateway shows the units back, for `rounds` one-item orders
/// placed and cancelled one at a time: (p50, p99, max).
pub async fn cancel_to_stock(
    gateway: &str,
    token: &str,
    product: &str,
    rounds: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    let http = reqwest::Client::new();
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let before = stock_of(&http, gateway, product).await?;
        let placed: Value = http
            .post(format!("{gateway}/orders"))
            .bearer_auth(token)
            .json(&json!([{ "items": [{"product_id": product, "quantity": 1}], "shipping_address": address() }]))
            .send()
            .await?
            .json()
            .await?;
        let order = placed[0]["order_id"].as_str().context("an order id")?;
        let cancelled = http
            .patch(format!("{gateway}/orders/{order}"))
            .bearer_auth(token)
            .json(&json!({"status": "cancelled"}))
            .send()
            .await?;
        anyhow::ensure!(
            cancelled.status() == 200,
            "cancelling answered {}",
            cancelled.status()
        );
        let answered = Instant::now();
        while stock_of(&http, gateway, product).await? < before {
            anyhow::ensure!(
                answered.elapsed() < Duration::from_secs(30),
                "a cancelled order's stock did not come back in 30 s"
            );
        }
        times.push(answered.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99), at(1.0)))
}

async fn psql_rows(database: &str, sql: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            database,
            "-AtF",
            "|",
            "-c",
            sql,
        ])
        .output()
        .await?;
    anyhow::ensure!(output.status.success(), "psql failed: {sql}");
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('|')?;
            Some((key.to_owned(), value.trim().parse().ok()?))
        })
        .collect())
}

/// For every bench product: stock now plus units sold equals what was put in.
/// Returns (products checked, units sold, products whose books do not balance).
pub async fn oversell_check(products: &[String]) -> anyhow::Result<(usize, i64, usize)> {
    // Let the last confirmations land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let list = products
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(",");
    let stock = psql_rows(
        "shop_bench_products",
        &format!("SELECT product_id, stock FROM products WHERE product_id IN ({list})"),
    )
    .await?;
    let sold = psql_rows(
        "shop_bench_orders",
        &format!(
            "SELECT i.product_id, sum(i.quantity) FROM order_items i JOIN orders o USING (order_id)
              WHERE o.status <> 'cancelled' AND i.product_id IN ({list}) GROUP BY 1"
        ),
    )
    .await?;
    let mut unbalanced = 0;
    let mut total_sold = 0;
    for (product, left) in &stock {
        let sold = sold
            .iter()
            .find(|(p, _)| p == product)
            .map_or(0, |(_, n)| *n);
        total_sold += sold;
        if left + sold != STOCK {
            unbalanced += 1;
        }
    }
    Ok((stock.len(), total_sold, unbalanced))
}
