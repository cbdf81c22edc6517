//! Units of one product on one line of an order, a stock hold or a release,
//! parsed once: a [`Quantity`] is always within its range, so stock code
//! holding one never checks for zero or negative units again.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// Units of one product on one line: 1 to [`Quantity::MAX`]. Made only by
/// [`Quantity::parse`] (also when deserialized), so a value is always valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i32")]
pub struct Quantity(i32);

/// Why a number is not a [`Quantity`]; its text is the message clients get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {}", Quantity::MAX)]
pub struct OutOfRange;

impl Quantity {
    /// Most units one line may ask for: a bound on what one request can
    /// hold, far above what a shop customer orders of one thing.
    pub const MAX: i32 = 10_000;

    /// The quantity `raw`, if it is 1 to [`Quantity::MAX`].
    pub fn parse(raw: i64) -> Result<Self, OutOfRange> {
        match i32::try_from(raw) {
            Ok(units) if (1..=Self::MAX).contains(&units) => Ok(Self(units)),
            _ => Err(OutOfRange),
        }
    }

    /// The units, for a column or a sum.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = OutOfRange;

    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl TryFrom<i32> for Quantity {
    type Error = OutOfRange;

    fn try_from(raw: i32) -> Result<Self, Self::Error> {
        Self::parse(raw.into())
    }
}

impl From<Quantity> for i32 {
    fn from(quantity: Quantity) -> Self {
        quantity.0
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

// Written out because utoipa's derive takes no range on a newtype's field.
impl utoipa::PartialSchema for Quantity {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(1))
            .maximum(Some(Self::MAX))
            .description(Some(format!(
                "Units of one product on one line, 1 to {}.",
                Self::MAX
            )))
            .into()
    }
}

impl utoipa::ToSchema for Quantity {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Quantity")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_to_max_units_are_quantities() {
        assert_eq!(Quantity::parse(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::parse(10_000).map(Quantity::get), Ok(10_000));
        for bad in [0, -1, 10_001, i64::from(i32::MAX) + 1] {
            assert_eq!(Quantity::parse(bad), Err(OutOfRange), "{bad}");
        }
        assert_eq!(OutOfRange.to_string(), "must be 1 to 10000");
    }

    #[test]
    fn deserializing_goes_through_parse() {
        let parsed: Quantity = serde_json::from_value(7.into()).expect("a quantity");
        assert_eq!(parsed.get(), 7);
        assert_eq!(serde_json::to_string(&parsed).ok().as_deref(), Some("7"));
        let refused = serde_json::from_value::<Quantity>(0.into()).expect_err("zero units");
        assert_eq!(refused.to_string(), "must be 1 to 10000");
    }
}
