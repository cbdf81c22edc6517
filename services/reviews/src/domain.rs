//! The rules of a review, as plain values: a rating is 1 to 5 stars, a title
//! 1 to 120 characters, a body 1 to 5,000; an edit changes the text and
//! nothing else; a summary is a count, an average and a histogram.

use std::collections::BTreeMap;

use platform::error::FieldErrors;
use platform::{ApiError, FieldError};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Longest title, in characters.
pub const TITLE_MAX: usize = 120;
/// Longest body, in characters.
pub const BODY_MAX: usize = 5_000;

/// 1 to 5 stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rating(i16);

impl Rating {
    pub fn parse(stars: i64) -> Result<Self, String> {
        match i16::try_from(stars) {
            Ok(stars @ 1..=5) => Ok(Self(stars)),
            _ => Err(format!("must be a whole number from 1 to 5, not {stars}")),
        }
    }

    pub fn stars(self) -> i16 {
        self.0
    }
}

/// Text of bounded length, trimmed; what a title and a body are made of.
fn bounded_text(raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    let chars = text.chars().count();
    if chars == 0 {
        return Err("must not be empty".into());
    }
    if chars > max {
        return Err(format!("must be at most {max} characters, not {chars}"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not hold control characters".into());
    }
    Ok(text.to_owned())
}

/// A review's headline: 1 to 120 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn parse(raw: &str) -> Result<Self, String> {
        bounded_text(raw, TITLE_MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A review's text: 1 to 5,000 characters after trimming; line breaks kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body(String);

impl Body {
    pub fn parse(raw: &str) -> Result<Self, String> {
        bounded_text(raw, BODY_MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A review as written, every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub rating: Rating,
    pub title: Title,
    pub body: Body,
}

/// A change to a review's text: only `title` and `body` can change, and at
/// least one of them must be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEdit {
    pub title: Option<Title>,
    pub body: Option<Body>,
    /// The version in the body, when the caller sent it there rather than in `If-Match`.
    pub version: Option<i64>,
}

fn text_of<'a>(body: &'a Map<String, Value>, field: &str) -> Option<Result<&'a str, String>> {
    body.get(field)
        .map(|value| value.as_str().ok_or_else(|| "must be a string".to_owned()))
}

/// Parses the body of `POST /products/{id}/reviews`: `{rating, title, body}`.
pub fn parse_new_review(body: &Value) -> Result<NewReview, ApiError> {
    let Value::Object(body) = body else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    let mut errors = FieldErrors::default();
    for field in body.keys() {
        if !matches!(field.as_str(), "rating" | "title" | "body") {
            errors
                .0
                .push(FieldError::new(field, "is not a field of a review"));
        }
    }
    let rating = match body.get("rating") {
        None => Err("is required".to_owned()),
        Some(value) => value
            .as_i64()
            .ok_or_else(|| "must be a whole number from 1 to 5".to_owned())
            .and_then(Rating::parse),
    };
    let rating = errors.check("rating", rating);
    let title = text_of(body, "title")
        .unwrap_or_else(|| Err("is required".into()))
        .and_then(Title::parse);
    let title = errors.check("title", title);
    let text = text_of(body, "body")
        .unwrap_or_else(|| Err("is required".into()))
        .and_then(Body::parse);
    let text = errors.check("body", text);
    match (rating, title, text) {
        (Some(rating), Some(title), Some(body)) if errors.0.is_empty() => Ok(NewReview {
            rating,
            title,
            body,
        }),
        _ => Err(ApiError::validation(errors.0)),
    }
}

/// Parses the body of `PATCH /reviews/{id}`: `{title?, body?, version?}`;
/// any other field, the rating among them, is a 422 naming it.
pub fn parse_text_edit(body: &Value) -> Result<TextEdit, ApiError> {
    let Value::Object(body) = body else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    let mut errors = FieldErrors::default();
    for field in body.keys() {
        match field.as_str() {
            "title" | "body" | "version" => {}
            "rating" | "product_id" | "user_id" | "author_name" | "verified_purchase" => {
                errors.0.push(FieldError::new(
                    field,
                    "cannot be changed; only `title` and `body` can",
                ))
            }
            _ => errors
                .0
                .push(FieldError::new(field, "is not a field of a review")),
        }
    }
    let title = text_of(body, "title").map(|text| text.and_then(Title::parse));
    let title = title.and_then(|result| errors.check("title", result));
    let text = text_of(body, "body").map(|text| text.and_then(Body::parse));
    let text = text.and_then(|result| errors.check("body", result));
    let version = match body.get("version") {
        None | Some(Value::Null) => None,
        Some(value) => errors.check(
            "version",
            value
                .as_i64()
                .ok_or_else(|| "must be a whole number".to_owned()),
        ),
    };
    if errors.0.is_empty() && !body.contains_key("title") && !body.contains_key("body") {
        errors
            .0
            .push(FieldError::new("body", "give `title`, `body` or both"));
    }
    if errors.0.is_empty() {
        Ok(TextEdit {
            title,
            body: text,
            version,
        })
    } else {
        Err(ApiError::validation(errors.0))
    }
}

/// `GET /products/{id}/reviews/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    pub product_id: uuid::Uuid,
    /// How many reviews the product has.
    pub count: i64,
    /// The mean rating, rounded to two decimals; `null` with no reviews.
    pub average: Option<f64>,
    /// How many reviews gave each number of stars, `"1"` to `"5"`, zeros included.
    #[schema(value_type = Object, example = json!({"1": 0, "2": 1, "3": 0, "4": 3, "5": 8}))]
    pub histogram: BTreeMap<String, i64>,
}

/// The summary of a product from the count of reviews per star.
pub fn summarise(product_id: uuid::Uuid, per_star: &[(i16, i64)]) -> Summary {
    let mut histogram: BTreeMap<String, i64> = (1..=5).map(|s| (s.to_string(), 0)).collect();
    let (mut count, mut stars) = (0i64, 0i64);
    for &(star, n) in per_star {
        if let Some(slot) = histogram.get_mut(&star.to_string()) {
            *slot += n;
            count += n;
            stars += i64::from(star) * n;
        }
    }
    let average = (count > 0).then(|| (stars as f64 / count as f64 * 100.0).round() / 100.0);
    Summary {
        product_id,
        count,
        average,
        histogram,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ratings_are_one_to_five_whole_stars() {
        assert!(Rating::parse(1).is_ok() && Rating::parse(5).is_ok());
        for bad in [0, 6, -1, 70_000] {
            assert!(Rating::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn titles_and_bodies_are_trimmed_and_bounded_in_characters() {
        assert_eq!(Title::parse("  Good  ").map(|t| t.0), Ok("Good".into()));
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"é".repeat(TITLE_MAX)).is_ok());
        assert!(Title::parse(&"é".repeat(TITLE_MAX + 1)).is_err());
        assert!(Body::parse(&"x".repeat(BODY_MAX)).is_ok());
        assert!(Body::parse(&"x".repeat(BODY_MAX + 1)).is_err());
        assert!(Body::parse("line one\nline two").is_ok());
        assert!(Title::parse("bell\u{7}").is_err());
    }

    #[test]
    fn a_new_review_reports_every_bad_field() {
        let err = parse_new_review(&json!({"rating": 9, "title": "", "extra": 1}))
            .expect_err("three faults");
        let ApiError::Validation { errors, .. } = err else {
            panic!("a validation error");
        };
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["body", "extra", "rating", "title"]);
        assert!(parse_new_review(&json!({"rating": 4, "title": "t", "body": "b"})).is_ok());
        assert!(parse_new_review(&json!({"rating": 4.5, "title": "t", "body": "b"})).is_err());
    }

    #[test]
    fn an_edit_changes_only_the_text() {
        let edit = parse_text_edit(&json!({"title": "New", "version": 2})).expect("valid");
        assert_eq!(edit.title.map(|t| t.0), Some("New".into()));
        assert_eq!(edit.version, Some(2));
        for refused in [
            json!({"rating": 5}),
            json!({"title": "x", "product_id": "p"}),
            json!({"version": 1}),
            json!({"title": 3}),
        ] {
            assert!(parse_text_edit(&refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_summary_counts_every_star_and_rounds_the_mean() {
        let id = uuid::Uuid::nil();
        let summary = summarise(id, &[(5, 2), (4, 1)]);
        assert_eq!(summary.count, 3);
        assert_eq!(summary.average, Some(4.67));
        assert_eq!(summary.histogram["5"], 2);
        assert_eq!(summary.histogram["1"], 0);
        let empty = summarise(id, &[]);
        assert_eq!((empty.count, empty.average), (0, None));
        assert_eq!(empty.histogram.len(), 5);
    }
}
