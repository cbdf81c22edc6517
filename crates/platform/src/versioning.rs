//! Optimistic locking over HTTP: a resource's version is its strong ETag;
//! a change names the version it was made against, by `If-Match` or by a
//! `version` field in its body, and a read with `If-None-Match` can be a 304.

use crate::error::ApiError;

/// The version a PATCH must match: from `If-Match: "<version>"` or the body's
/// `version`. Neither is 428; both disagreeing is 400.
pub fn expected_version(if_match: Option<&str>, body: Option<i64>) -> Result<i32, ApiError> {
    let header = match if_match {
        None => None,
        Some(raw) => {
            let raw = raw.trim();
            if raw.starts_with("W/") {
                return Err(ApiError::BadRequest(
                    "If-Match needs a strong ETag such as \"3\"".into(),
                ));
            }
            let version = raw.trim_matches('"').parse::<i32>().map_err(|_| {
                ApiError::BadRequest(format!("If-Match `{raw}` is not an ETag this API issued"))
            })?;
            Some(version)
        }
    };
    let body = body
        .map(|v| i32::try_from(v).map_err(|_| ApiError::invalid("version", "is not a version")))
        .transpose()?;
    match (header, body) {
        (Some(h), Some(b)) if h != b => Err(ApiError::BadRequest(
            "If-Match and `version` name different versions".into(),
        )),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(ApiError::PreconditionRequired(
            "send If-Match: \"<version>\" or `version` in the body; GET gives the current one"
                .into(),
        )),
    }
}

/// The strong ETag of a version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// True when `If-None-Match` names `version` (or is `*`).
pub fn none_match_hits(if_none_match: &str, version: i64) -> bool {
    let tag = etag(version);
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_if_match_or_the_body() {
        assert_eq!(expected_version(Some("\"4\""), None).ok(), Some(4));
        assert_eq!(expected_version(None, Some(4)).ok(), Some(4));
        assert_eq!(expected_version(Some("\"4\""), Some(4)).ok(), Some(4));
        assert!(matches!(
            expected_version(None, None),
            Err(ApiError::PreconditionRequired(_))
        ));
        assert!(matches!(
            expected_version(Some("\"4\""), Some(5)),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            expected_version(Some("W/\"4\""), None),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            expected_version(Some("abc"), None),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn if_none_match_compares_etags() {
        assert!(none_match_hits("\"3\"", 3));
        assert!(none_match_hits("\"1\", W/\"3\"", 3));
        assert!(none_match_hits("*", 3));
        assert!(!none_match_hits("\"2\"", 3));
    }
}
