//! Reviews figures: products with a page of reviews each, written through the
//! API by registered customers (so authors, events and the one-per-user rule
//! are the real ones), then read as shoppers read them.

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::orders_figures;

/// Reviews written at once while seeding.
const WRITERS: usize = 16;

/// `products` new products with `per_product` reviews each, one by each of
/// `per_product` new customers; returns the products' ids.
pub async fn reviewed_products(
    gateway: &str,
    admin: &str,
    products: usize,
    per_product: usize,
) -> anyhow::Result<Vec<String>> {
    let product_ids = orders_figures::stocked_products(gateway, admin, products).await?;
    let customers: Vec<String> = futures::stream::iter(0..per_product)
        .map(|_| orders_figures::customer(gateway))
        .buffer_unordered(4)
        .try_collect()
        .await?;
    let http = reqwest::Client::new();
    let writes = customers.iter().enumerate().flat_map(|(author, token)| {
        product_ids
            .iter()
            .enumerate()
            .map(move |(n, product)| (author, token, n, product))
    });
    futures::stream::iter(writes)
        .map(|(author, token, n, product)| {
            let http = http.clone();
            async move {
                let response = http
                    .post(format!("{gateway}/products/{product}/reviews"))
                    .bearer_auth(token)
                    .json(&json!({
                        "rating": 1 + (author + n) % 5,
                        "title": format!("Review {author} of item {n}"),
                        "body": "Written by the benchmark: it does what it says, and arrived on time. \
                                 The box was larger than it needed to be."
                    }))
                    .send()
                    .await?;
                let status = response.status();
                anyhow::ensure!(
                    status == 201,
                    "POST /products/{product}/reviews answered {status}: {}",
                    response.text().await.unwrap_or_default()
                );
                Ok(())
            }
        })
        .buffer_unordered(WRITERS)
        .try_collect::<Vec<()>>()
        .await?;
    // The reads must find what was written: a full first page per product.
    let summary: Value = http
        .get(format!(
            "{gateway}/products/{}/reviews/summary",
            product_ids[0]
        ))
        .send()
        .await?
        .json()
        .await?;
    let count = summary["count"]
        .as_u64()
        .with_context(|| format!("a review summary: {summary}"))?;
    anyhow::ensure!(
        count == per_product as u64,
        "a seeded product has {count} reviews, not {per_product}"
    );
    Ok(product_ids)
}

/// Milliseconds from a review's 201 to its product's `rating_count` showing
/// it through the gateway, for `count` reviews of `products` (new ones), each
/// by one of `count / products` new customers, written one at a time:
/// (p50, p99, max).
pub async fn rating_latency(
    gateway: &str,
    admin: &str,
    products: usize,
    count: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    let product_ids = orders_figures::stocked_products(gateway, admin, products).await?;
    let mut customers = Vec::new();
    for _ in 0..count.div_ceil(products) {
        customers.push(orders_figures::customer(gateway).await?);
    }
    let http = reqwest::Client::new();
    let rating_count = |product: String| {
        let http = http.clone();
        async move {
            let product: Value = http
                .get(format!("{gateway}/products/{product}"))
                .send()
                .await?
                .json()
                .await?;
            product["rating_count"]
                .as_u64()
                .with_context(|| format!("a product with a rating: {product}"))
        }
    };
    let mut latencies = Vec::with_capacity(count);
    for n in 0..count {
        let product = &product_ids[n % products];
        let token = &customers[n / products];
        let before = rating_count(product.clone()).await?;
        let response = http
            .post(format!("{gateway}/products/{product}/reviews"))
            .bearer_auth(token)
            .json(&json!({"rating": 1 + n % 5, "title": "Timed", "body": "How fast the rating follows."}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "a review answered {}",
            response.status()
        );
        let written = std::time::Instant::now();
        loop {
            if rating_count(product.clone()).await? > before {
                break;
            }
            anyhow::ensure!(
                written.elapsed() < std::time::Duration::from_secs(10),
                "the rating of {product} did not follow its review within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        latencies.push(written.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok((at(0.5), at(0.99), latencies[latencies.len() - 1]))
}
