//! `/internal/*` routes: only callers holding the shared internal token get in.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};

use crate::error::ApiError;

/// The header service-to-service calls carry the internal token in.
pub const HEADER: &str = "x-internal-token";

/// The shared secret, as handler state.
#[derive(Clone, Debug)]
pub struct InternalToken(pub SecretString);

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
        let given = parts
            .headers
            .get(HEADER)
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if constant_time_eq(given, expected.0.expose_secret().as_bytes()) {
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
    use super::constant_time_eq;

    #[test]
    fn equal_only_when_every_byte_matches() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secre"));
    }
}
