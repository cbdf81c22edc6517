//! A closed-loop HTTP/1.1 load generator: each connection sends its next
//! request as soon as the previous answer is read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What to request: a base URL, paths to cycle through, bearer tokens (one
/// per connection, in turn), and for a POST its JSON body.
#[derive(Clone)]
pub struct Target {
    authority: String,
    requests: Arc<Vec<(String, Option<Bytes>)>>,
    authorizations: Arc<Vec<String>>,
    /// The next request to send, shared by every connection and by the
    /// warm-up and the measured run, so that no request is sent twice before
    /// the list comes round (a scenario of requests each new must not be
    /// answered from the caches the same request filled a moment before).
    next: Arc<AtomicUsize>,
}

impl Target {
    /// GETs of `paths` at `base` (`http://host:port`).
    pub fn new(base: &str, paths: Vec<String>, token: &str) -> Self {
        Self {
            authority: base.trim_start_matches("http://").to_owned(),
            requests: Arc::new(paths.into_iter().map(|path| (path, None)).collect()),
            authorizations: Arc::new(vec![format!("Bearer {token}")]),
            next: Arc::default(),
        }
    }

    /// POSTs to `path`, cycling through `bodies`.
    pub fn posts(
        base: &str,
        path: &str,
        bodies: &[serde_json::Value],
        token: Option<&str>,
    ) -> Self {
        Self {
            authority: base.trim_start_matches("http://").to_owned(),
            requests: Arc::new(
                bodies
                    .iter()
                    .map(|body| (path.to_owned(), Some(Bytes::from(body.to_string()))))
                    .collect(),
            ),
            authorizations: Arc::new(token.map(|t| format!("Bearer {t}")).into_iter().collect()),
            next: Arc::default(),
        }
    }

    /// The same requests, each connection sending them as the next of `tokens`.
    pub fn sent_by_each_of(mut self, tokens: &[String]) -> Self {
        self.authorizations = Arc::new(tokens.iter().map(|t| format!("Bearer {t}")).collect());
        self
    }
}

/// What one scenario measured.
pub struct Report {
    /// Successful requests per second.
    pub rate: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Failed requests (non-2xx or transport errors).
    pub errors: u64,
}

impl Report {
    /// The results table's heading, aligned with [`Report::row`].
    pub fn header() -> String {
        format!(
            "{:<62} {:>10} {:>9} {:>9} {:>7}",
            "scenario", "req/s", "p50 ms", "p99 ms", "errors"
        )
    }

    /// The scenario's row of the results table, `note` (a ceiling ratio, say) after it.
    pub fn row(&self, name: &str, note: &str) -> String {
        let row = format!(
            "{:<62} {:>10.0} {:>9.2} {:>9.2} {:>7}  {note}",
            name, self.rate, self.p50_ms, self.p99_ms, self.errors
        );
        row.trim_end().to_owned()
    }
}

/// Runs `connections` connections against `target` for `duration`.
pub async fn run_load(
    target: Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Report> {
    run_load_with_warmup(target, connections, duration, Duration::from_secs(1)).await
}

/// Like [`run_load`], with a chosen warm-up (none for slow scenarios such as logins).
pub async fn run_load_with_warmup(
    target: Target,
    connections: usize,
    duration: Duration,
    warmup: Duration,
) -> anyhow::Result<Report> {
    // A short warm-up fills caches and connection pools.
    if !warmup.is_zero() {
        drive(target.clone(), connections, warmup).await?;
    }
    let started = Instant::now();
    let (histogram, errors) = drive(target, connections, duration).await?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Report {
        rate: histogram.len() as f64 / elapsed,
        p50_ms: histogram.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: histogram.value_at_quantile(0.99) as f64 / 1000.0,
        errors,
    })
}

async fn drive(
    target: Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::with_capacity(connections);
    for worker in 0..connections {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            connection(target, worker, deadline).await
        }));
    }
    let mut total = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for task in tasks {
        let (histogram, failed) = task.await??;
        total.add(histogram)?;
        errors += failed;
    }
    Ok((total, errors))
}

async fn connection(
    target: Target,
    worker: usize,
    deadline: Instant,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    let stream = TcpStream::connect(&target.authority).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    while Instant::now() < deadline {
        let n = target.next.fetch_add(1, Ordering::Relaxed);
        let (path, body) = &target.requests[n % target.requests.len()];
        let builder = match body {
            Some(_) => Request::post(path.as_str()).header("content-type", "application/json"),
            None => Request::get(path.as_str()),
        };
        let mut builder = builder.header("host", target.authority.as_str());
        if !target.authorizations.is_empty() {
            let authorization = &target.authorizations[worker % target.authorizations.len()];
            builder = builder.header("authorization", authorization.as_str());
        }
        let request = builder.body(Full::new(body.clone().unwrap_or_default()))?;
        let started = Instant::now();
        match sender.send_request(request).await {
            Ok(response) => {
                let ok = response.status().is_success();
                let drained = response.into_body().collect().await.is_ok();
                if ok && drained {
                    histogram.record(started.elapsed().as_micros() as u64)?;
                } else {
                    errors += 1;
                }
            }
            Err(_) => {
                errors += 1;
                break;
            }
        }
    }
    Ok((histogram, errors))
}
