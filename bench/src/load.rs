//! A closed-loop HTTP/1.1 load generator: each connection sends its next
//! request as soon as the previous answer is read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What to request: a base URL, paths to cycle through, a bearer token.
#[derive(Clone)]
pub struct Target {
    authority: String,
    paths: Arc<Vec<String>>,
    authorization: String,
}

impl Target {
    /// A target at `base` (`http://host:port`).
    pub fn new(base: &str, paths: Vec<String>, token: &str) -> Self {
        Self {
            authority: base.trim_start_matches("http://").to_owned(),
            paths: Arc::new(paths),
            authorization: format!("Bearer {token}"),
        }
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

/// Runs `connections` connections against `target` for `duration`.
pub async fn run_load(
    target: Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Report> {
    // A short warm-up fills caches and connection pools.
    drive(target.clone(), connections, Duration::from_secs(1)).await?;
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
    let mut n = worker;
    while Instant::now() < deadline {
        let path = &target.paths[n % target.paths.len()];
        n += 1;
        let request = Request::get(path.as_str())
            .header("host", target.authority.as_str())
            .header("authorization", target.authorization.as_str())
            .body(Empty::<Bytes>::new())?;
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
