//! The steady mix the cluster serves while it is broken: customers register,
//! log in, refresh, browse, search, order with an `Idempotency-Key` and
//! sometimes cancel, read products' reviews and review products (bought or
//! not); staff pay, ship and deliver. Every request is counted in the phase
//! it ended in, with its latency and how it failed. A client retries what is
//! safe to retry (GETs, a POST with an `Idempotency-Key`, a login, a status
//! change it can recognise as done, a review, which one review per user and
//! product turns into a 409 once written) after a transport error, a 502,
//! 503 or 504, as a well-behaved client would; what still fails after that
//! is a failure the user saw.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::topology::INGRESS;

/// How a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    /// 500, 502, 504 and any other 5xx but 503.
    ServerError,
    Unavailable,
    Connection,
    /// A 4xx the mix did not expect (401 after a refresh, 404 for one's own order).
    Unexpected,
}

/// The figures of one phase.
pub struct Phase {
    /// What was being done to the cluster.
    pub name: String,
    requests: AtomicU64,
    server_errors: AtomicU64,
    unavailable: AtomicU64,
    connection: AtomicU64,
    unexpected: AtomicU64,
    /// Operations that still failed after the client's retries.
    gave_up: AtomicU64,
    latency: std::sync::Mutex<Histogram<u64>>,
    /// A few unexpected answers, to say what they were.
    samples: std::sync::Mutex<Vec<String>>,
}

impl Phase {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            requests: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
            connection: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            latency: std::sync::Mutex::new(
                Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds"),
            ),
            samples: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn record(&self, kind: Kind, elapsed: Duration, sample: impl FnOnce() -> String) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let counter = match kind {
            Kind::Ok => None,
            Kind::ServerError => Some(&self.server_errors),
            Kind::Unavailable => Some(&self.unavailable),
            Kind::Connection => Some(&self.connection),
            Kind::Unexpected => Some(&self.unexpected),
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
            // Keep a few of each kind, so a rare 500 is not hidden behind timeouts.
            let mut samples = self.samples.lock().expect("samples lock");
            let tag = format!("{kind:?}");
            if samples.iter().filter(|s| s.starts_with(&tag)).count() < 3 {
                samples.push(format!("{tag}: {}", sample()));
            }
        }
        if let Ok(mut latency) = self.latency.lock() {
            latency.saturating_record(elapsed.as_micros() as u64);
        }
    }

    /// Requests sent in this phase (every attempt counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that failed (a 5xx or no answer), before any retry.
    pub fn failed(&self) -> u64 {
        self.server_errors.load(Ordering::Relaxed)
            + self.unavailable.load(Ordering::Relaxed)
            + self.connection.load(Ordering::Relaxed)
    }

    /// Operations the client gave up on, after its retries.
    pub fn gave_up(&self) -> u64 {
        self.gave_up.load(Ordering::Relaxed)
    }

    /// Unexpected 4xx answers.
    pub fn unexpected(&self) -> u64 {
        self.unexpected.load(Ordering::Relaxed)
    }

    /// One line of figures.
    pub fn line(&self) -> String {
        let p99 = self
            .latency
            .lock()
            .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)
            .unwrap_or(0.0);
        format!(
            "{:<34} {:>6} requests, {:>4} failed (5xx {}, 503 {}, connection {}), {:>3} after retries, {} unexpected 4xx, p99 {:.1} ms",
            self.name,
            self.requests(),
            self.failed(),
            self.server_errors.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
            self.connection.load(Ordering::Relaxed),
            self.gave_up(),
            self.unexpected(),
            p99
        )
    }

    /// The unexpected answers kept as examples.
    pub fn samples(&self) -> Vec<String> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// What the clients were told, for the audit to hold the data against.
#[derive(Default)]
pub struct Ledger {
    /// Orders answered 201: order id and its idempotency key.
    pub orders: Vec<(Uuid, String)>,
    /// Users answered 201 at registration.
    pub registered: Vec<Uuid>,
    /// Reviews answered 201: review id, author and product.
    pub reviews: Vec<(Uuid, Uuid, Uuid)>,
}

/// Everything the clients share.
pub struct Traffic {
    http: reqwest::Client,
    phases: std::sync::Mutex<Vec<Arc<Phase>>>,
    current: AtomicUsize,
    stop: AtomicBool,
    products: Vec<Uuid>,
    admin: String,
    /// Orders placed, waiting for staff to move them on.
    placed: Mutex<VecDeque<Uuid>>,
    /// What the clients were told.
    pub ledger: Mutex<Ledger>,
}

/// One request's answer, after retries.
struct Answer {
    status: u16,
    body: Value,
}

/// What may be retried, and which statuses are the expected outcomes.
#[derive(Clone, Copy)]
struct Call<'a> {
    method: &'a Method,
    path: &'a str,
    token: Option<&'a str>,
    body: Option<&'a Value>,
    idempotency_key: Option<&'a str>,
    retry: bool,
    expected: &'a [u16],
}

const RETRIES: u32 = 12;

impl Traffic {
    /// Traffic over `products` with the staff's `admin` token, starting in phase `first`.
    pub fn new(products: Vec<Uuid>, admin: String, first: &str) -> Arc<Self> {
        Arc::new(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(35))
                .pool_max_idle_per_host(64)
                .build()
                .expect("a reqwest client builds"),
            phases: std::sync::Mutex::new(vec![Arc::new(Phase::new(first))]),
            current: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            products,
            admin,
            placed: Mutex::new(VecDeque::new()),
            ledger: Mutex::new(Ledger::default()),
        })
    }

    /// From now on, requests count in a new phase.
    pub fn begin(&self, name: &str) {
        let mut phases = self.phases.lock().expect("phases lock");
        phases.push(Arc::new(Phase::new(name)));
        self.current.store(phases.len() - 1, Ordering::Relaxed);
    }

    /// Every phase so far.
    pub fn phases(&self) -> Vec<Arc<Phase>> {
        self.phases.lock().expect("phases lock").clone()
    }

    fn phase(&self) -> Arc<Phase> {
        let phases = self.phases.lock().expect("phases lock");
        phases[self.current.load(Ordering::Relaxed)].clone()
    }

    /// Asks every client to stop after its current operation.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    async fn send(&self, call: Call<'_>) -> Option<Answer> {
        let attempts = if call.retry { RETRIES } else { 1 };
        for attempt in 1..=attempts {
            let mut request = self
                .http
                .request(call.method.clone(), format!("{INGRESS}{}", call.path));
            if let Some(token) = call.token {
                request = request.bearer_auth(token);
            }
            if let Some(key) = call.idempotency_key {
                request = request.header("idempotency-key", key);
            }
            if let Some(body) = call.body {
                request = request.json(body);
            }
            let started = Instant::now();
            let sent = request.send().await;
            let elapsed = started.elapsed();
            // Counted where it ended: a request cut by a fault belongs to the fault's phase.
            let phase = self.phase();
            let (kind, answer, retry_after) = match sent {
                Err(err) => {
                    phase.record(Kind::Connection, elapsed, || {
                        let mut chain = err.to_string();
                        let mut source = std::error::Error::source(&err);
                        while let Some(cause) = source {
                            chain.push_str(&format!(": {cause}"));
                            source = cause.source();
                        }
                        format!("{} {}: {chain}", call.method, call.path)
                    });
                    (Kind::Connection, None, None)
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let kind = match status {
                        503 => Kind::Unavailable,
                        500..=599 => Kind::ServerError,
                        _ if call.expected.contains(&status) => Kind::Ok,
                        // The first attempt of an order still running elsewhere.
                        409 if is_in_progress(&body) => Kind::Ok,
                        _ => Kind::Unexpected,
                    };
                    phase.record(kind, elapsed, || {
                        format!("{} {} -> {status} {body}", call.method, call.path)
                    });
                    (kind, Some(Answer { status, body }), retry_after)
                }
            };
            let in_progress = answer
                .as_ref()
                .is_some_and(|a| a.status == 409 && is_in_progress(&a.body));
            let transient = matches!(kind, Kind::Connection | Kind::Unavailable)
                || answer
                    .as_ref()
                    .is_some_and(|a| matches!(a.status, 502 | 504))
                || in_progress;
            if !transient || attempt == attempts {
                if transient || kind == Kind::ServerError {
                    self.phase().gave_up.fetch_add(1, Ordering::Relaxed);
                }
                return answer.filter(|_| !transient);
            }
            let pause = retry_after
                .map(|s| Duration::from_secs(s.min(2)))
                .unwrap_or(Duration::from_millis(100 * u64::from(attempt)));
            tokio::time::sleep(pause).await;
        }
        None
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Option<Answer> {
        self.send(Call {
            method: &Method::GET,
            path,
            token,
            body: None,
            idempotency_key: None,
            retry: true,
            expected: &[200],
        })
        .await
    }

    /// One customer's life, over and over until [`Traffic::stop`].
    pub async fn customer(self: Arc<Self>, seed: u64) {
        let mut rng = Rng(seed | 1);
        while !self.stopping() {
            let Some(mut session) = self.register(&mut rng).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            for _ in 0..(8 + rng.below(8)) {
                if self.stopping() {
                    return;
                }
                // A person reads the page before the next click.
                tokio::time::sleep(Duration::from_millis(20 + rng.below(60))).await;
                match rng.below(100) {
                    0..=21 => {
                        let limit = 5 + rng.below(20);
                        self.get(&format!("/products?limit={limit}&sort=-created_at"), None)
                            .await;
                    }
                    22..=39 => {
                        let product = self.products[rng.below(self.products.len() as u64) as usize];
                        self.get(&format!("/products/{product}"), None).await;
                    }
                    40..=48 => {
                        let words = ["lamp", "chair", "sturdy lamp", "oak", "lampp"];
                        let q = words[rng.below(words.len() as u64) as usize];
                        self.get(
                            &format!("/products?q={q}&in_stock=true&max_price=50000"),
                            None,
                        )
                        .await;
                    }
                    49..=54 => self.read_reviews(&mut rng).await,
                    55..=59 => self.review(&mut rng, &session).await,
                    60..=81 => self.order(&mut rng, &session).await,
                    82..=88 => self.cancel_one(&session).await,
                    89..=94 => {
                        if let Some(fresh) = self.refresh(&session).await {
                            session = fresh;
                        } else if let Some(fresh) = self.login(&session).await {
                            session = fresh;
                        }
                    }
                    _ => {
                        if let Some(fresh) = self.login(&session).await {
                            session = fresh;
                        }
                    }
                }
            }
        }
    }

    async fn register(&self, rng: &mut Rng) -> Option<Session> {
        let username = format!("c{}", Uuid::now_v7().simple());
        let password = format!("pw-{}", rng.below(1 << 40));
        let body = json!({
            "username": username,
            "password": password,
            "email": format!("{username}@example.com"),
            "name": "Cluster Customer",
        });
        let answer = self
            .send(Call {
                method: &Method::POST,
                path: "/auth/register",
                token: None,
                body: Some(&body),
                idempotency_key: None,
                retry: false,
                expected: &[201],
            })
            .await?;
        if answer.status != 201 {
            return None;
        }
        let user_id = answer.body["user"]["user_id"]
            .as_str()
            .and_then(|id| id.parse().ok())?;
        self.ledger.lock().await.registered.push(user_id);
        Session::from(&answer.body, username, password, user_id)
    }

    async fn login(&self, session: &Session) -> Option<Session> {
        let body = json!({"username": session.username, "password": session.password});
        self.renew(session, "/auth/login", &body, true).await
    }

    /// A refresh spends its token: retrying it would look like a stolen token
    /// being reused, so a failed refresh is followed by a login instead.
    async fn refresh(&self, session: &Session) -> Option<Session> {
        let body = json!({"refresh_token": session.refresh});
        self.renew(session, "/auth/refresh", &body, false).await
    }

    /// A fresh token pair for `session` from `path`.
    async fn renew(
        &self,
        session: &Session,
        path: &str,
        body: &Value,
        retry: bool,
    ) -> Option<Session> {
        let answer = self
            .send(Call {
                method: &Method::POST,
                path,
                token: None,
                body: Some(body),
                idempotency_key: None,
                retry,
                expected: &[200],
            })
            .await?;
        (answer.status == 200).then_some(())?;
        Session::from(
            &answer.body,
            session.username.clone(),
            session.password.clone(),
            session.user_id,
        )
    }

    async fn order(&self, rng: &mut Rng, session: &Session) {
        let key = Uuid::new_v4().to_string();
        let product = self.products[rng.below(self.products.len() as u64) as usize];
        let body = json!([{
            "items": [{"product_id": product, "quantity": 1 + rng.below(3)}],
            // The key rides in the address, so the audit can find duplicates.
            "shipping_address": {"line1": "1 Cluster Road", "line2": key, "city": "Leeds",
                                  "postal_code": "LS1 1AA", "country": "GB"},
        }]);
        let Some(answer) = self
            .send(Call {
                method: &Method::POST,
                path: "/orders",
                token: Some(&session.access),
                body: Some(&body),
                idempotency_key: Some(&key),
                retry: true,
                expected: &[201, 409],
            })
            .await
        else {
            return;
        };
        if answer.status != 201 {
            return;
        }
        let Some(order_id) = answer.body[0]["order_id"]
            .as_str()
            .and_then(|id| id.parse::<Uuid>().ok())
        else {
            return;
        };
        self.ledger.lock().await.orders.push((order_id, key));
        if rng.below(4) == 0 {
            self.get(&format!("/orders/{order_id}"), Some(&session.access))
                .await;
        }
        self.placed.lock().await.push_back(order_id);
    }

    /// A product's reviews as a shopper reads them: the first page, sometimes
    /// the best ones, sometimes the summary too.
    async fn read_reviews(&self, rng: &mut Rng) {
        let product = self.products[rng.below(self.products.len() as u64) as usize];
        let query = match rng.below(3) {
            0 => "?sort=-rating&limit=10",
            _ => "",
        };
        self.get(&format!("/products/{product}/reviews{query}"), None)
            .await;
        if rng.below(2) == 0 {
            self.get(&format!("/products/{product}/reviews/summary"), None)
                .await;
        }
    }

    /// Reviews a product, bought or not. Retrying is safe: a review that was
    /// written before its answer got lost makes the retry a 409, and so does
    /// a product this customer reviewed before.
    async fn review(&self, rng: &mut Rng, session: &Session) {
        let product = self.products[rng.below(self.products.len() as u64) as usize];
        let stars = 1 + rng.below(5);
        let body = json!({
            "rating": stars,
            "title": format!("{stars} stars"),
            "body": "Reviewed while the cluster was being broken.",
        });
        let Some(answer) = self
            .send(Call {
                method: &Method::POST,
                path: &format!("/products/{product}/reviews"),
                token: Some(&session.access),
                body: Some(&body),
                idempotency_key: None,
                retry: true,
                expected: &[201, 409],
            })
            .await
        else {
            return;
        };
        if answer.status != 201 {
            return;
        }
        let Some(review_id) = answer.body["review_id"]
            .as_str()
            .and_then(|id| id.parse::<Uuid>().ok())
        else {
            return;
        };
        self.ledger
            .lock()
            .await
            .reviews
            .push((review_id, session.user_id, product));
        // Read it back now and then, from whichever replica answers.
        if rng.below(3) == 0 {
            self.get(&format!("/reviews/{review_id}"), None).await;
        }
    }

    /// Cancels the customer's newest order that is still only created or paid.
    async fn cancel_one(&self, session: &Session) {
        let Some(answer) = self
            .get(
                &format!("/users/{}/orders?limit=5", session.user_id),
                Some(&session.access),
            )
            .await
        else {
            return;
        };
        let order = answer.body["data"].as_array().and_then(|orders| {
            orders
                .iter()
                .find(|o| matches!(o["status"].as_str(), Some("created" | "paid")))
                .and_then(|o| o["order_id"].as_str())
                .map(str::to_owned)
        });
        if let Some(order) = order {
            self.transition(&order, "cancelled", &session.access).await;
        }
    }

    /// A status change; a 409 (another change got there first, or a retry
    /// of one that was applied) is an answer, not a failure.
    async fn transition(&self, order: &str, status: &str, token: &str) {
        let body = json!({ "status": status });
        self.send(Call {
            method: &Method::PATCH,
            path: &format!("/orders/{order}"),
            token: Some(token),
            body: Some(&body),
            idempotency_key: None,
            retry: true,
            expected: &[200, 409],
        })
        .await;
    }

    /// Staff: pays, ships and delivers placed orders as they come.
    pub async fn staff(self: Arc<Self>, seed: u64) {
        let mut rng = Rng(seed | 1);
        while !self.stopping() {
            let next = self.placed.lock().await.pop_front();
            let Some(order) = next else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let order = order.to_string();
            let admin = self.admin.clone();
            self.transition(&order, "paid", &admin).await;
            // Most paid orders ship; some wait; most shipped ones arrive.
            if rng.below(10) < 7 {
                self.transition(&order, "shipped", &admin).await;
                if rng.below(10) < 7 {
                    self.transition(&order, "delivered", &admin).await;
                }
            }
        }
    }
}

fn is_in_progress(body: &Value) -> bool {
    body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("still being processed"))
}

/// A logged-in customer.
struct Session {
    user_id: Uuid,
    username: String,
    password: String,
    access: String,
    refresh: String,
}

impl Session {
    fn from(body: &Value, username: String, password: String, user_id: Uuid) -> Option<Self> {
        Some(Self {
            user_id,
            username,
            password,
            access: body["access_token"].as_str()?.to_owned(),
            refresh: body["refresh_token"].as_str()?.to_owned(),
        })
    }
}

/// xorshift64: enough randomness for a traffic mix, and repeatable per seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
