//! `http_requests_total` and `http_request_duration_seconds`, by service,
//! method, route and status, recorded for every request a stack answers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{Method, Request, Response};
use metrics::{Counter, Histogram};
use tower::{Layer, Service};

/// Records the request metrics of the service named `service`.
#[derive(Debug, Clone, Copy)]
pub struct RequestMetricsLayer {
    service: &'static str,
}

impl RequestMetricsLayer {
    pub fn new(service: &'static str) -> Self {
        // Installs the recorder before the first request, so that no handle
        // kept below belongs to the no-op recorder.
        crate::metrics::handle();
        Self { service }
    }
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            service: self.service,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    service: &'static str,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RequestMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let labels = Labels {
            service: self.service,
            route: req.extensions().get::<MatchedPath>().cloned(),
            method: req.method().clone(),
        };
        RequestMetricsFuture {
            inner: self.inner.call(req),
            seen: Some((labels, started)),
        }
    }
}

/// The labels of a request's series, but for its status.
#[derive(Clone)]
struct Labels {
    service: &'static str,
    route: Option<MatchedPath>,
    method: Method,
}

impl Labels {
    fn route(&self) -> Option<&str> {
        self.route.as_ref().map(MatchedPath::as_str)
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        self.service == other.service
            && self.route() == other.route()
            && self.method == other.method
    }
}

impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.service.hash(state);
        self.route().hash(state);
        self.method.hash(state);
    }
}

pin_project_lite::pin_project! {
    pub struct RequestMetricsFuture<F> {
        #[pin]
        inner: F,
        seen: Option<(Labels, Instant)>,
    }
}

impl<F, ResBody, E> Future for RequestMetricsFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answered = ready!(this.inner.poll(cx));
        if let (Ok(response), Some((labels, started))) = (&answered, this.seen.take()) {
            let elapsed = started.elapsed().as_secs_f64();
            HANDLES.with_borrow_mut(|kept| {
                let (counter, histogram) = kept
                    .entry((labels, response.status().as_u16()))
                    .or_insert_with_key(|(labels, status)| register(labels, *status));
                counter.increment(1);
                histogram.record(elapsed);
            });
        }
        Poll::Ready(answered)
    }
}

thread_local! {
    // Building a metric's key and finding it in the recorder's registry cost
    // more than the rest of a cached read's stack together; the handles are
    // the same every time, so each thread keeps the ones it used. The
    // recorder never forgets a series (no idle timeout is set), so a kept
    // handle stays the one `/metrics` renders.
    static HANDLES: RefCell<HashMap<(Labels, u16), (Counter, Histogram)>> =
        RefCell::new(HashMap::new());
}

fn register(labels: &Labels, status: u16) -> (Counter, Histogram) {
    let service = labels.service;
    let route = labels.route().unwrap_or("unmatched").to_owned();
    let method = labels.method.as_str().to_owned();
    let counter = metrics::counter!(
        "http_requests_total",
        "service" => service, "method" => method.clone(), "route" => route.clone(),
        "status" => status.to_string()
    );
    let histogram = metrics::histogram!(
        "http_request_duration_seconds",
        "service" => service, "method" => method, "route" => route
    );
    (counter, histogram)
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use crate::http::{StackOptions, stack};

    /// The value of the `http_requests_total` series with these labels.
    fn requests_total(service: &str, status: u16) -> Option<u64> {
        crate::metrics::handle()
            .render()
            .lines()
            .filter(|line| line.starts_with("http_requests_total{"))
            .filter(|line| line.contains(&format!("service=\"{service}\"")))
            .filter(|line| line.contains("route=\"/things/{id}\""))
            .find(|line| line.contains(&format!("status=\"{status}\"")))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_request_is_counted_under_its_own_route_and_status_from_every_thread() {
        let service = "request-metrics-test";
        let app = stack(
            Router::new().route(
                "/things/{id}",
                get(
                    |axum::extract::Path(id): axum::extract::Path<u32>| async move {
                        if id % 3 == 0 {
                            StatusCode::NOT_FOUND
                        } else {
                            StatusCode::OK
                        }
                    },
                ),
            ),
            &StackOptions {
                service,
                timeout: std::time::Duration::from_secs(5),
                cors_origins: None,
            },
        );
        let calls = (1..=60).map(|id| {
            let app = app.clone();
            tokio::spawn(async move {
                let request = axum::http::Request::get(format!("/things/{id}"))
                    .body(Body::empty())
                    .expect("a literal request");
                app.oneshot(request).await.expect("infallible").status()
            })
        });
        for call in calls {
            call.await.expect("the call did not panic");
        }
        assert_eq!(requests_total(service, 200), Some(40));
        assert_eq!(requests_total(service, 404), Some(20));
    }
}
