//! Products as the rules see them: parsed, valid values and the version precondition.

use platform::FieldError;
use platform::error::FieldErrors;
use platform::money::{Currency, Money};
use serde_json::Value;

/// Most tags a product may carry.
pub const MAX_TAGS: usize = 20;

/// A product to create, every field valid: made only by [`NewProduct::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    sku: Sku,
    name: String,
    description: String,
    price: Money,
    stock: i32,
    category: String,
    tags: Vec<String>,
    attributes: Value,
}

/// The fields of a new product as a client sends them.
#[derive(Debug, Clone, Copy)]
pub struct RawProduct<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub price_cents: i64,
    pub currency: &'a str,
    pub stock: i64,
    pub category: &'a str,
    pub tags: &'a [String],
    /// Absent is an empty object.
    pub attributes: Option<&'a Value>,
}

impl NewProduct {
    /// Checks every field, reporting all failures at once (each named as
    /// the client named it).
    pub fn parse(raw: RawProduct<'_>) -> Result<Self, Vec<FieldError>> {
        let mut e = FieldErrors::default();
        let no_attributes = Value::Object(Default::default());
        let sku = e.check("sku", Sku::parse(raw.sku));
        let name = e.check("name", parse_name(raw.name));
        let description = e.check("description", parse_description(raw.description));
        let price_cents = e.check("price_cents", parse_price(raw.price_cents));
        let currency = e.check("currency", Currency::parse(raw.currency));
        let stock = e.check("stock", parse_stock(raw.stock));
        let category = e.check("category", parse_category(raw.category));
        let tags = e.check("tags", parse_tags(raw.tags));
        let attributes = e.check(
            "attributes",
            parse_attributes(raw.attributes.unwrap_or(&no_attributes)),
        );
        let price = match (price_cents, currency) {
            (Some(cents), Some(currency)) => e.check("price_cents", Money::parse(cents, currency)),
            _ => None,
        };
        match (
            sku,
            name,
            description,
            price,
            stock,
            category,
            tags,
            attributes,
        ) {
            (
                Some(sku),
                Some(name),
                Some(description),
                Some(price),
                Some(stock),
                Some(category),
                Some(tags),
                Some(attributes),
            ) if e.0.is_empty() => Ok(Self {
                sku,
                name,
                description,
                price,
                stock,
                category,
                tags,
                attributes,
            }),
            _ => Err(e.0),
        }
    }

    pub fn sku(&self) -> &Sku {
        &self.sku
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// The price of one unit.
    pub fn price(&self) -> &Money {
        &self.price
    }

    /// Units in stock.
    pub fn stock(&self) -> i32 {
        self.stock
    }

    /// Lower-cased.
    pub fn category(&self) -> &str {
        &self.category
    }

    /// Lower-cased and distinct.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// A JSON object.
    pub fn attributes(&self) -> &Value {
        &self.attributes
    }
}

/// Changes to a product, every present field valid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductChanges {
    /// New SKU.
    pub sku: Option<Sku>,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New price.
    pub price_cents: Option<i64>,
    /// New currency.
    pub currency: Option<Currency>,
    /// New stock level.
    pub stock: Option<i32>,
    /// New category.
    pub category: Option<String>,
    /// New tags (replacing the old).
    pub tags: Option<Vec<String>>,
    /// New attributes (replacing the old).
    pub attributes: Option<Value>,
}

impl ProductChanges {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A stock-keeping unit: 1 to 64 letters, digits, `-`, `_`, `.`, trimmed.
/// Only [`Sku::parse`] makes one, so a value is always valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sku(String);

impl Sku {
    /// The SKU in `raw`, or why it is not one (a message for the client).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let sku = raw.trim();
        if (1..=64).contains(&sku.len())
            && sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            Ok(Self(sku.to_owned()))
        } else {
            Err("must be 1 to 64 letters, digits, `-`, `_` or `.`".into())
        }
    }

    /// The SKU as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SKU as an owned string, for a column.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn text(raw: &str, min: usize, max: usize) -> Result<String, String> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        Err("must not be empty".into())
    } else if len > max {
        Err(format!("must be at most {max} characters"))
    } else if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        Err("must not contain control characters".into())
    } else {
        Ok(value.to_owned())
    }
}

/// A name: 1 to 200 characters.
pub fn parse_name(raw: &str) -> Result<String, String> {
    text(raw, 1, 200)
}

/// A description: up to 5000 characters.
pub fn parse_description(raw: &str) -> Result<String, String> {
    text(raw, 0, 5000)
}

/// A price: 0 to 10^12 minor units.
pub fn parse_price(raw: i64) -> Result<i64, String> {
    if (0..=1_000_000_000_000).contains(&raw) {
        Ok(raw)
    } else {
        Err("must be between 0 and 1000000000000 minor units".into())
    }
}

/// A stock level: 0 to 10^9 units.
pub fn parse_stock(raw: i64) -> Result<i32, String> {
    if (0..=1_000_000_000).contains(&raw) {
        Ok(raw as i32)
    } else {
        Err("must be between 0 and 1000000000".into())
    }
}

/// A category: 1 to 100 characters, lower-cased.
pub fn parse_category(raw: &str) -> Result<String, String> {
    text(raw, 1, 100).map(|c| c.to_lowercase())
}

/// Tags: up to 20, each 1 to 50 characters, lower-cased, duplicates folded.
pub fn parse_tags(raw: &[String]) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in raw {
        let tag = text(tag, 1, 50)
            .map_err(|m| format!("each tag {m}"))?
            .to_lowercase();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(format!("at most {MAX_TAGS} tags"));
    }
    Ok(tags)
}

/// Attributes: a JSON object of at most 50 keys.
pub fn parse_attributes(raw: &Value) -> Result<Value, String> {
    match raw {
        Value::Object(map) if map.len() <= 50 => Ok(raw.clone()),
        Value::Object(_) => Err("at most 50 attributes".into()),
        _ => Err("must be a JSON object".into()),
    }
}

/// The mean of a product's ratings; `None` without any.
pub fn rating_average(sum: i64, count: i32) -> Option<f64> {
    (count > 0).then(|| sum as f64 / f64::from(count))
}

/// The value the `rating_average` column holds and `sort=rating` orders by:
/// the mean, or 0 without ratings, computed as Postgres computes it.
pub fn rating_key(sum: i64, count: i32) -> f64 {
    rating_average(sum, count).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_product_is_parsed_whole_or_names_every_failing_field() {
        let tags = vec!["Red".to_owned()];
        let raw = RawProduct {
            sku: " K-1 ",
            name: "Kettle",
            description: "",
            price_cents: 2599,
            currency: "eur",
            stock: 5,
            category: "Kitchen",
            tags: &tags,
            attributes: None,
        };
        let product = NewProduct::parse(raw).expect("valid");
        assert_eq!(product.sku().as_str(), "K-1");
        assert_eq!(product.price().currency().as_str(), "EUR");
        assert_eq!(product.category(), "kitchen");
        let failures = NewProduct::parse(RawProduct {
            price_cents: -1,
            currency: "euro",
            ..raw
        })
        .expect_err("invalid");
        let fields: Vec<&str> = failures.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["price_cents", "currency"]);
    }

    #[test]
    fn fields_are_normalised_or_refused() {
        assert_eq!(
            parse_tags(&["Red".into(), "red".into(), " Sale ".into()]),
            Ok(vec!["red".into(), "sale".into()])
        );
        assert!(parse_tags(&(0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()).is_err());
        assert!(Sku::parse("AB-12_x.9").is_ok());
        assert!(Sku::parse("has space").is_err());
        assert!(parse_stock(-1).is_err());
        assert!(parse_price(-1).is_err());
        assert!(parse_attributes(&serde_json::json!([1])).is_err());
    }
}
