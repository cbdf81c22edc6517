//! Postal addresses: one shape for profiles and orders alike.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

/// A postal address, as clients send and receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street and number.
    pub line1: String,
    /// Flat, floor, care-of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// Town or city, up to 100 characters.
    pub city: String,
    /// Up to 20 characters, as the country writes it.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, such as `DE`.
    pub country: String,
}

fn bounded(value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err("must not be empty".into())
    } else if value.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else if value.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(value.to_owned())
    }
}

impl Address {
    /// The address trimmed, its country upper-cased, every part checked; failing
    /// parts are named `<field>.<part>`.
    pub fn parse(&self, field: &str) -> Result<Address, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |part: &str, result: Result<String, String>| {
            result
                .map_err(|message| errors.push(FieldError::new(format!("{field}.{part}"), message)))
                .ok()
        };
        let line1 = check("line1", bounded(&self.line1, 200));
        let line2 = match self.line2.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(line2) => check("line2", bounded(line2, 200)).map(Some),
        };
        let city = check("city", bounded(&self.city, 100));
        let postal_code = check("postal_code", bounded(&self.postal_code, 20));
        let country = check("country", {
            let country = self.country.trim().to_uppercase();
            if country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()) {
                Ok(country)
            } else {
                Err("must be an ISO 3166-1 alpha-2 code such as DE".to_owned())
            }
        });
        match (line1, line2, city, postal_code, country) {
            (Some(line1), Some(line2), Some(city), Some(postal_code), Some(country)) => {
                Ok(Address {
                    line1,
                    line2,
                    city,
                    postal_code,
                    country,
                })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_checked_and_named() {
        let address = Address {
            line1: " ".into(),
            line2: Some("  ".into()),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "de".into(),
        };
        let errors = address.parse("shipping_address").expect_err("empty line1");
        assert_eq!(errors[0].field, "shipping_address.line1");
        let fixed = Address {
            line1: "Main 1".into(),
            ..address
        }
        .parse("a")
        .expect("valid");
        assert_eq!(fixed.country, "DE");
        assert_eq!(fixed.line2, None);
    }
}
