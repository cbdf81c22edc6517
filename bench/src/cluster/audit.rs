//! After the load: wait until the cluster has settled (outboxes drained,
//! settlements done, mail sent, lapsed holds released), then hold every
//! database against what the clients were told and against each other.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use super::topology::{INGRESS, NAMESPACE, SERVICES, database_url};
use super::traffic::Ledger;
use crate::server::queued;

/// What the audit found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Acknowledged data that is gone: orders, users, mails, an order's stock.
    pub lost: u64,
    /// Data that exists twice: orders for one key, mails for one message.
    pub duplicated: u64,
    /// Units sold beyond the stock put in.
    pub oversold: u64,
    /// One line per problem found.
    pub problems: Vec<String>,
    /// One line per check that passed.
    pub passed: Vec<String>,
}

impl Findings {
    fn check(&mut self, ok: bool, passed: String, failed: impl FnOnce() -> String) {
        if ok {
            self.passed.push(passed);
        } else {
            self.problems.push(failed());
        }
    }
}

struct Databases {
    by_service: HashMap<&'static str, PgPool>,
}

impl Databases {
    async fn open() -> anyhow::Result<Self> {
        let mut by_service = HashMap::new();
        for service in SERVICES.iter().filter(|s| **s != "gateway") {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect(&database_url(service))
                .await
                .with_context(|| format!("connecting to {service}'s database"))?;
            by_service.insert(*service, pool);
        }
        Ok(Self { by_service })
    }

    fn of(&self, service: &str) -> &PgPool {
        &self.by_service[service]
    }

    async fn count(&self, service: &str, sql: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(sql).fetch_one(self.of(service)).await?)
    }

    /// What is still moving: a line per kind of unfinished work.
    async fn unsettled(&self) -> anyhow::Result<Vec<String>> {
        let mut waiting = Vec::new();
        for service in self.by_service.keys() {
            let pending = self
                .count(
                    service,
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                )
                .await?;
            if pending > 0 {
                waiting.push(format!("{pending} unpublished events in {service}"));
            }
        }
        let checks = [
            (
                "orders",
                "SELECT count(*) FROM stock_settlements",
                "stock settlements",
            ),
            (
                "products",
                "SELECT count(*) FROM reservations WHERE status = 'held'",
                "held reservations",
            ),
            (
                "notifications",
                "SELECT count(*) FROM notifications WHERE status = 'pending'",
                "pending mails",
            ),
        ];
        let for_notifications = queued(NAMESPACE, &["notifications.events"]).await?;
        if for_notifications > 0 {
            waiting.push(format!(
                "{for_notifications} events queued for notifications"
            ));
        }
        // Deliveries verify purchases: the audit compares them with the orders.
        let for_reviews = queued(NAMESPACE, &["reviews.events"]).await?;
        if for_reviews > 0 {
            waiting.push(format!("{for_reviews} events queued for reviews"));
        }
        for (service, sql, what) in checks {
            let n = self.count(service, sql).await?;
            if n > 0 {
                waiting.push(format!("{n} {what}"));
            }
        }
        Ok(waiting)
    }
}

/// Waits up to `limit` for the cluster to settle, then audits it.
pub async fn audit(
    ledger: &Ledger,
    initial_stock: &HashMap<Uuid, i64>,
    mail_dir: &Path,
    limit: Duration,
) -> anyhow::Result<Findings> {
    let db = Databases::open().await?;
    let started = Instant::now();
    let mut last_said = Instant::now();
    loop {
        let waiting = db.unsettled().await?;
        if waiting.is_empty() {
            println!(
                "settled {:.1} s after the load stopped",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        if started.elapsed() > limit {
            println!(
                "not settled after {} s: {}",
                limit.as_secs(),
                waiting.join(", ")
            );
            break;
        }
        if last_said.elapsed() > Duration::from_secs(10) {
            println!("settling: {}", waiting.join(", "));
            last_said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut findings = Findings::default();
    orders(&db, ledger, &mut findings).await?;
    stock(&db, initial_stock, &mut findings).await?;
    mails(&db, mail_dir, &mut findings).await?;
    reviews(&db, ledger, &mut findings).await?;
    leftovers(&db, &mut findings).await?;
    Ok(findings)
}

/// Every acknowledged order exists, once per idempotency key.
async fn orders(db: &Databases, ledger: &Ledger, findings: &mut Findings) -> anyhow::Result<()> {
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT order_id FROM orders")
        .fetch_all(db.of("orders"))
        .await?;
    let stored: std::collections::HashSet<Uuid> = stored.into_iter().collect();
    let lost = ledger
        .orders
        .iter()
        .filter(|(id, _)| !stored.contains(id))
        .count() as u64;
    findings.lost += lost;
    findings.check(
        lost == 0,
        format!("all {} acknowledged orders are stored", ledger.orders.len()),
        || format!("{lost} acknowledged orders are missing"),
    );
    let duplicated: i64 = db
        .count(
            "orders",
            "SELECT coalesce(sum(n - 1), 0)::bigint FROM (
               SELECT count(*) AS n FROM orders
                GROUP BY user_id, shipping_address->>'line2' HAVING count(*) > 1) twice",
        )
        .await?;
    findings.duplicated += duplicated as u64;
    findings.check(
        duplicated == 0,
        format!(
            "{} orders, none twice for one Idempotency-Key",
            stored.len()
        ),
        || format!("{duplicated} orders duplicate another of the same Idempotency-Key"),
    );
    let users: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM users")
        .fetch_all(db.of("users"))
        .await?;
    let users: std::collections::HashSet<Uuid> = users.into_iter().collect();
    let lost_users = ledger
        .registered
        .iter()
        .filter(|id| !users.contains(id))
        .count() as u64;
    findings.lost += lost_users;
    findings.check(
        lost_users == 0,
        format!(
            "all {} acknowledged registrations are stored",
            ledger.registered.len()
        ),
        || format!("{lost_users} acknowledged registrations are missing"),
    );
    Ok(())
}

/// Stock put in = stock left + units held or confirmed, per product; every
/// standing order's units are confirmed, every cancelled order's released,
/// and no hold stands for no order.
async fn stock(
    db: &Databases,
    initial: &HashMap<Uuid, i64>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, i32, i64)> = sqlx::query_as(
        "SELECT p.product_id, p.stock,
                coalesce(sum(ri.quantity) FILTER (WHERE r.status IN ('held', 'confirmed')), 0)::bigint
           FROM products p
           LEFT JOIN reservation_items ri ON ri.product_id = p.product_id
           LEFT JOIN reservations r ON r.reservation_id = ri.reservation_id
          GROUP BY p.product_id, p.stock",
    )
    .fetch_all(db.of("products"))
    .await?;
    let (mut oversold, mut leaked, mut sold) = (0u64, 0u64, 0i64);
    for (product, left, taken) in rows {
        let Some(put_in) = initial.get(&product) else {
            continue;
        };
        sold += taken;
        let balance = i64::from(left) + taken - put_in;
        if balance > 0 || left < 0 {
            oversold += balance.max(0) as u64 + (-i64::from(left)).max(0) as u64;
        } else if balance < 0 {
            leaked += (-balance) as u64;
        }
    }
    findings.oversold += oversold;
    findings.check(
        oversold == 0 && leaked == 0,
        format!("stock balances: {sold} units sold, 0 oversold, 0 leaked"),
        || format!("stock out of balance: {oversold} units oversold, {leaked} units leaked"),
    );

    let orders: Vec<(Uuid, Uuid, String)> =
        sqlx::query_as("SELECT order_id, reservation_id, status FROM orders")
            .fetch_all(db.of("orders"))
            .await?;
    let holds: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT r.reservation_id, r.status, coalesce(sum(ri.quantity), 0)::bigint
           FROM reservations r LEFT JOIN reservation_items ri USING (reservation_id)
          GROUP BY r.reservation_id, r.status",
    )
    .fetch_all(db.of("products"))
    .await?;
    let holds: HashMap<Uuid, (String, i64)> = holds
        .into_iter()
        .map(|(id, status, units)| (id, (status, units)))
        .collect();
    let (mut unheld, mut unreleased) = (0u64, 0u64);
    let mut referenced = std::collections::HashSet::new();
    for (order, reservation, status) in &orders {
        referenced.insert(*reservation);
        let hold = holds.get(reservation);
        let standing = status != "cancelled";
        let held = hold.is_some_and(|(s, units)| s == "confirmed" && *units > 0);
        let released = hold.is_none_or(|(s, units)| s == "released" || *units == 0);
        if standing && !held {
            unheld += 1;
            if findings.problems.len() < 40 {
                findings.problems.push(format!(
                    "order {order} ({status}) has reservation {reservation} in state {hold:?}"
                ));
            }
        }
        if !standing && !released {
            unreleased += 1;
        }
    }
    findings.lost += unheld;
    findings.check(
        unheld == 0 && unreleased == 0,
        format!(
            "every order's stock is confirmed ({} orders) or released if cancelled",
            orders.len()
        ),
        || {
            format!(
                "{unheld} standing orders without confirmed stock, {unreleased} cancelled orders still holding stock"
            )
        },
    );
    let orphans = holds
        .iter()
        .filter(|(id, (status, units))| {
            status != "released" && *units > 0 && !referenced.contains(*id)
        })
        .count();
    findings.check(
        orphans == 0,
        "no reservation is held or confirmed without an order".to_owned(),
        || format!("{orphans} reservations hold stock for no order"),
    );
    Ok(())
}

/// One welcome per registered user, one confirmation per order, one
/// shipping mail per shipped order; each sent, each written once.
async fn mails(db: &Databases, mail_dir: &Path, findings: &mut Findings) -> anyhow::Result<()> {
    let customers: Vec<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM users WHERE role = 'customer'")
            .fetch_all(db.of("users"))
            .await?;
    let orders: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT user_id, count(*)::bigint,
                (count(*) FILTER (WHERE status IN ('shipped', 'delivered')))::bigint
           FROM orders GROUP BY user_id",
    )
    .fetch_all(db.of("orders"))
    .await?;
    let rows: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
        "SELECT user_id, kind, count(*)::bigint,
                (count(*) FILTER (WHERE status = 'sent'))::bigint
           FROM notifications GROUP BY user_id, kind",
    )
    .fetch_all(db.of("notifications"))
    .await?;
    let mut have: HashMap<(Uuid, String), (i64, i64)> = HashMap::new();
    for (user, kind, all, sent) in rows {
        have.insert((user, kind), (all, sent));
    }
    let mut expected: HashMap<(Uuid, String), i64> = HashMap::new();
    for user in &customers {
        expected.insert((*user, "welcome".into()), 1);
    }
    for (user, placed, shipped) in orders {
        expected.insert((user, "order_confirmation".into()), placed);
        if shipped > 0 {
            expected.insert((user, "order_shipped".into()), shipped);
        }
    }
    let (mut missing, mut unsent, mut extra, mut total) = (0i64, 0i64, 0i64, 0i64);
    for (key, want) in &expected {
        total += want;
        let (all, sent) = have.get(key).copied().unwrap_or((0, 0));
        missing += (want - all).max(0);
        extra += (all - want).max(0);
        unsent += (all.min(*want) - sent).max(0);
    }
    for (key, (all, _)) in &have {
        if !expected.contains_key(key) {
            extra += all;
        }
    }
    findings.lost += (missing + unsent) as u64;
    findings.duplicated += extra as u64;
    findings.check(
        missing == 0 && unsent == 0 && extra == 0,
        format!(
            "{total} mails expected ({} welcome), each recorded once and sent",
            customers.len()
        ),
        || {
            format!(
                "mails: {missing} never recorded, {unsent} recorded but not sent, {extra} recorded twice or for nothing"
            )
        },
    );

    // The mail files themselves: a Message-ID written twice is a mail sent twice.
    let mut written: HashMap<String, u32> = HashMap::new();
    for entry in std::fs::read_dir(mail_dir)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(id) = text
            .lines()
            .find_map(|line| line.strip_prefix("Message-ID: "))
        {
            *written.entry(id.trim().to_owned()).or_default() += 1;
        }
    }
    let twice: u32 = written.values().map(|n| n.saturating_sub(1)).sum();
    let sent = db
        .count(
            "notifications",
            "SELECT count(*) FROM notifications WHERE status = 'sent'",
        )
        .await?;
    let unwritten = (sent - written.len() as i64).max(0);
    findings.duplicated += u64::from(twice);
    findings.lost += unwritten as u64;
    findings.check(
        twice == 0 && unwritten == 0,
        format!("{} mail files, none written twice", written.len()),
        || format!("mail files: {twice} written twice, {unwritten} sent mails have no file"),
    );
    Ok(())
}

/// Every acknowledged review is readable through the API, as it was written;
/// no user has two reviews of one product, in the database or in what the
/// clients were told; and a review is a verified purchase exactly when its
/// author has a delivered order holding the product.
async fn reviews(db: &Databases, ledger: &Ledger, findings: &mut Findings) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut readable: HashMap<Uuid, (Uuid, Uuid)> = HashMap::new();
    // `GET /reviews?ids=` takes up to 100 ids.
    for chunk in ledger.reviews.chunks(100) {
        let ids: Vec<String> = chunk.iter().map(|(id, _, _)| id.to_string()).collect();
        let url = format!("{INGRESS}/reviews?ids={}", ids.join(","));
        let page: serde_json::Value = http
            .get(&url)
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("GET /reviews?ids= ({} ids)", ids.len()))?
            .json()
            .await?;
        for review in page["data"].as_array().context("a batch of reviews")? {
            let field = |name: &str| review[name].as_str().and_then(|v| v.parse::<Uuid>().ok());
            if let (Some(id), Some(user), Some(product)) =
                (field("review_id"), field("user_id"), field("product_id"))
            {
                readable.insert(id, (user, product));
            }
        }
    }
    let lost = ledger
        .reviews
        .iter()
        .filter(|(id, user, product)| readable.get(id) != Some(&(*user, *product)))
        .count() as u64;
    findings.lost += lost;
    findings.check(
        lost == 0,
        format!(
            "all {} acknowledged reviews are readable through the gateway",
            ledger.reviews.len()
        ),
        || format!("{lost} acknowledged reviews cannot be read (or changed author or product)"),
    );

    let twice_stored: i64 = db
        .count(
            "reviews",
            "SELECT coalesce(sum(n - 1), 0)::bigint FROM (
               SELECT count(*) AS n FROM reviews
                GROUP BY user_id, product_id HAVING count(*) > 1) twice",
        )
        .await?;
    let mut told: HashMap<(Uuid, Uuid), std::collections::HashSet<Uuid>> = HashMap::new();
    for (id, user, product) in &ledger.reviews {
        told.entry((*user, *product)).or_default().insert(*id);
    }
    let twice_told: u64 = told.values().map(|ids| ids.len() as u64 - 1).sum();
    let stored = db.count("reviews", "SELECT count(*) FROM reviews").await?;
    findings.duplicated += twice_stored as u64 + twice_told;
    findings.check(
        twice_stored == 0 && twice_told == 0,
        format!("{stored} reviews, at most one per user and product"),
        || {
            format!(
                "reviews twice for one user and product: {twice_stored} stored, {twice_told} acknowledged"
            )
        },
    );

    // Who received what, from the orders database; what reviews believes, from its own.
    let delivered: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT DISTINCT o.user_id, i.product_id
           FROM orders o JOIN order_items i USING (order_id)
          WHERE o.status = 'delivered'",
    )
    .fetch_all(db.of("orders"))
    .await?;
    let delivered: std::collections::HashSet<(Uuid, Uuid)> = delivered.into_iter().collect();
    let marks: Vec<(Uuid, Uuid, bool)> =
        sqlx::query_as("SELECT user_id, product_id, verified_purchase FROM reviews")
            .fetch_all(db.of("reviews"))
            .await?;
    let verified = marks.iter().filter(|(_, _, v)| *v).count();
    let (mut unverified, mut wrongly) = (0u64, 0u64);
    for (user, product, mark) in &marks {
        match (delivered.contains(&(*user, *product)), mark) {
            (true, false) => unverified += 1,
            (false, true) => wrongly += 1,
            _ => {}
        }
    }
    // A delivery whose event never reached reviews is a lost effect.
    findings.lost += unverified;
    findings.check(
        unverified == 0 && wrongly == 0,
        format!("{verified} verified purchases, each backed by a delivered order, none missed"),
        || {
            format!(
                "verified purchases: {unverified} reviews of delivered products not verified, {wrongly} verified without a delivery"
            )
        },
    );
    Ok(())
}

/// Outboxes drained and the dead letter queue empty.
async fn leftovers(db: &Databases, findings: &mut Findings) -> anyhow::Result<()> {
    let mut pending = 0;
    for service in db.by_service.keys() {
        pending += db
            .count(
                service,
                "SELECT count(*) FROM outbox WHERE published_at IS NULL",
            )
            .await?;
    }
    findings.check(pending == 0, "every outbox drained".to_owned(), || {
        format!("{pending} events still unpublished")
    });
    let dead = queued(NAMESPACE, &["shop.events.dlq"]).await?;
    findings.check(
        dead == 0,
        "the dead letter queue is empty".to_owned(),
        || format!("{dead} events in the dead letter queue"),
    );
    Ok(())
}
