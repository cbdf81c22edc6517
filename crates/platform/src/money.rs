//! Amounts of money, parsed once: a [`Money`] is a non-negative number of
//! minor units with the ISO 4217 currency it counts in, so prices and totals
//! of different currencies cannot be added by mistake. On the wire it stays
//! two flat fields (`price_cents`, `currency`), as `api.md` fixes.

use std::fmt;

use crate::quantity::Quantity;

/// An ISO 4217 currency code: three letters, upper-cased. Made only by
/// [`Currency::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Currency(String);

/// Why text is not a [`Currency`]; its text is the message clients get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be an ISO 4217 code such as EUR")]
pub struct InvalidCurrency;

impl Currency {
    /// The code in `raw` (trimmed, any case).
    pub fn parse(raw: &str) -> Result<Self, InvalidCurrency> {
        let code = raw.trim().to_uppercase();
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(InvalidCurrency)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A non-negative amount in minor units of its currency. Made only by
/// [`Money::parse`] and by sums and multiples of valid amounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    cents: i64,
    currency: Currency,
}

/// Why an amount could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Money is never negative here: refunds are not amounts below zero.
    #[error("must not be negative")]
    Negative,
    /// A sum or multiple beyond what 64 bits of minor units hold.
    #[error("is too large")]
    TooLarge,
    /// Amounts of two currencies were added.
    #[error("mixes {0} and {1}")]
    MixedCurrencies(Currency, Currency),
}

impl Money {
    /// `cents` minor units of `currency`.
    pub fn parse(cents: i64, currency: Currency) -> Result<Self, MoneyError> {
        if cents < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Self { cents, currency })
    }

    /// Nothing, in `currency`: where a sum starts.
    pub fn zero(currency: Currency) -> Self {
        Self { cents: 0, currency }
    }

    /// The amount in minor units, for a column or the wire's `*_cents`.
    pub fn cents(&self) -> i64 {
        self.cents
    }

    /// The currency, for a column or the wire's `currency`.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// `quantity` units at this price.
    pub fn times(&self, quantity: Quantity) -> Result<Self, MoneyError> {
        let cents = self
            .cents
            .checked_mul(i64::from(quantity.get()))
            .ok_or(MoneyError::TooLarge)?;
        Ok(Self {
            cents,
            currency: self.currency.clone(),
        })
    }

    /// This amount and `other`, which must be in the same currency.
    pub fn plus(&self, other: &Money) -> Result<Self, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::MixedCurrencies(
                self.currency.clone(),
                other.currency.clone(),
            ));
        }
        let cents = self
            .cents
            .checked_add(other.cents)
            .ok_or(MoneyError::TooLarge)?;
        Ok(Self {
            cents,
            currency: self.currency.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(cents: i64) -> Money {
        Money::parse(cents, Currency::parse("eur").expect("a code")).expect("an amount")
    }

    #[test]
    fn currencies_are_three_letters_upper_cased() {
        assert_eq!(
            Currency::parse(" usd ").map(|c| c.to_string()),
            Ok("USD".into())
        );
        for bad in ["", "EURO", "E1R", "€"] {
            assert_eq!(Currency::parse(bad), Err(InvalidCurrency), "{bad}");
        }
    }

    #[test]
    fn amounts_are_never_negative() {
        let currency = Currency::parse("EUR").expect("a code");
        assert_eq!(Money::parse(-1, currency), Err(MoneyError::Negative));
        assert_eq!(eur(0).cents(), 0);
    }

    #[test]
    fn sums_and_multiples_keep_their_currency_and_bounds() {
        let three = Quantity::parse(3).expect("a quantity");
        assert_eq!(eur(250).times(three).map(|m| m.cents()), Ok(750));
        assert_eq!(eur(250).plus(&eur(1)).map(|m| m.cents()), Ok(251));
        assert_eq!(eur(i64::MAX).times(three), Err(MoneyError::TooLarge));
        assert_eq!(eur(i64::MAX).plus(&eur(1)), Err(MoneyError::TooLarge));
        let usd = Money::zero(Currency::parse("USD").expect("a code"));
        assert!(matches!(
            eur(1).plus(&usd),
            Err(MoneyError::MixedCurrencies(..))
        ));
    }
}
