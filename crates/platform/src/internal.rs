//! `/internal/*` routes: only callers holding the shared internal token get in.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};

use crate::error::ApiError;

/// The header service-to-service calls carry the internal token in. The
/// gateway strips it from every client request.
pub const HEADER: &str = "x-internal-token";

/// The shortest internal token a service accepts: a short one could be guessed.
pub const MIN_TOKEN_BYTES: usize = 32;

/// Whether `token` is long enough to guard `/internal/*`.
pub fn strong_enough(token: &SecretString) -> bool {
    token.expose_secret().len() >= MIN_TOKEN_BYTES
}

/// The shared secret, as handler state. Handler state is cloned for every
/// request, so the secret is shared rather than copied (and zeroized) each time.
#[derive(Clone, Debug)]
pub struct InternalToken(Arc<SecretString>);

impl InternalToken {
    pub fn new(token: SecretString) -> Self {
        Self(Arc::new(token))
    }
}

/// Proof that the request came from another service.
#[derive(Debug, Clone, Copy)]
pub struct InternalCaller;

impl<S> FromRequestParts<S> for InternalCaller
where
    InternalToken: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let expected = InternalToken::from_ref(state);
        let expected = expected.0.expose_secret().as_bytes();
        // No header never matches, not even a token that is (wrongly) empty.
        let given = parts.headers.get(HEADER).map(|value| value.as_bytes());
        if let Some(given) = given
            && !expected.is_empty()
            && constant_time_eq(given, expected)
        {
            Ok(InternalCaller)
        } else {
            Err(ApiError::Unauthorized(
                "internal routes need the internal token".into(),
            ))
        }
    }
}

/// Compares without an early exit, so timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use axum::extract::FromRequestParts;
    use secrecy::SecretString;

    use super::{InternalCaller, InternalToken, constant_time_eq, strong_enough};

    async fn admitted(token: &str, header: Option<&str>) -> bool {
        let mut request = axum::http::Request::builder();
        if let Some(header) = header {
            request = request.header(super::HEADER, header);
        }
        let (mut parts, ()) = request.body(()).expect("a request").into_parts();
        let state = InternalToken::new(SecretString::from(token.to_owned()));
        InternalCaller::from_request_parts(&mut parts, &state)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn only_the_right_header_gets_in_and_no_header_never_does() {
        let token = "0123456789abcdef0123456789abcdef";
        assert!(admitted(token, Some(token)).await);
        assert!(!admitted(token, Some("0123456789abcdef0123456789abcdeF")).await);
        assert!(!admitted(token, None).await);
        assert!(!admitted("", None).await, "even a token wrongly left empty");
        assert!(!admitted("", Some("")).await);
    }

    #[test]
    fn tokens_shorter_than_32_bytes_are_too_weak() {
        assert!(!strong_enough(&SecretString::from("short")));
        assert!(strong_enough(&SecretString::from("x".repeat(32))));
    }

    #[test]
    fn equal_only_when_every_byte_matches() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secre"));
    }
}
