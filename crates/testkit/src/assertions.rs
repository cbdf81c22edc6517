//! Assertions every service's tests make.

use serde_json::Value;

/// Asserts that `response` is a problem with `status`, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.expect("a JSON problem body");
    assert_eq!(actual, status, "{body}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "a problem is application/problem+json, not {content_type:?}: {body}"
    );
    assert_eq!(
        body["status"], status,
        "the body repeats the status: {body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "a problem has a title and a detail: {body}"
    );
    body
}
