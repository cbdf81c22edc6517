//! Error responses made outside the handlers (unknown route, wrong method,
//! body too large, timeout) get a problem+json body like every other error.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::{Body, HttpBody};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use tower::{BoxError, Layer, Service};

use super::BODY_LIMIT_BYTES;
use crate::error::{PROBLEM_JSON, problem};

#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemForBareErrorsLayer;

impl<S> Layer<S> for ProblemForBareErrorsLayer {
    type Service = ProblemForBareErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProblemForBareErrors { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ProblemForBareErrors<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ProblemForBareErrors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ProblemForBareErrorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ProblemForBareErrorsFuture {
            state: State::Inner {
                inner: self.inner.call(req),
            },
        }
    }
}

pin_project_lite::pin_project! {
    pub struct ProblemForBareErrorsFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Inner { #[pin] inner: F },
        // Only a bare error gets here: its body is read to keep what it said.
        Rewriting { rewriting: BoxFuture<'static, Response<Body>> },
    }
}

impl<F, ResBody, E> Future for ProblemForBareErrorsFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProjection::Inner { inner } => {
                    let response = ready!(inner.poll(cx))?;
                    if !is_bare_error(&response) {
                        return Poll::Ready(Ok(response.map(Body::new)));
                    }
                    let rewriting = Box::pin(as_problem(response));
                    this.state.set(State::Rewriting { rewriting });
                }
                StateProjection::Rewriting { rewriting } => {
                    return rewriting.as_mut().poll(cx).map(Ok);
                }
            }
        }
    }
}

fn is_bare_error<B>(response: &Response<B>) -> bool {
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    is_error
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

async fn as_problem<B>(response: Response<B>) -> Response<Body>
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    // Keep what little the layer said, if it was short text.
    let said = match body.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .chars()
            .take(200)
            .collect::<String>(),
        Err(_) => String::new(),
    };
    let detail = match status {
        StatusCode::NOT_FOUND => "no such resource".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this path".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("request body too large (at most {BODY_LIMIT_BYTES} bytes)")
        }
        StatusCode::SERVICE_UNAVAILABLE if said.is_empty() => {
            "the request took too long and was abandoned".to_owned()
        }
        _ if said.trim().is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        _ => said,
    };
    let fresh = problem(status, detail, Vec::new(), None).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, fresh.into_body())
}
