//! The mails: subject, plain text and HTML for each kind.

use events::{OrderCreated, OrderLine};

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Minor units as an amount: `12345, "EUR"` is `123.45 EUR`.
fn money(cents: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, (cents % 100).abs())
}

fn short(id: uuid::Uuid) -> String {
    // The last characters: a v7 id starts with its time, so orders placed in
    // the same minute share their first eight.
    let simple = id.simple().to_string();
    simple[simple.len() - 8..].to_uppercase()
}

/// Sent on `user.registered`.
pub fn welcome(name: &str) -> Mail {
    Mail {
        subject: "Welcome to the shop".into(),
        text: format!("Hello {name},\n\nwelcome to the shop. Your account is ready.\n"),
        html: format!(
            "<p>Hello {},</p><p>welcome to the shop. Your account is ready.</p>",
            escape(name)
        ),
    }
}

fn line_text(line: &OrderLine, currency: &str) -> String {
    format!(
        "{} x {} at {}",
        line.quantity,
        line.name,
        money(line.unit_price_cents, currency)
    )
}

/// Sent on `order.created`.
pub fn order_confirmation(name: &str, order: &OrderCreated) -> Mail {
    let number = short(order.order_id);
    let lines: Vec<String> = order
        .items
        .iter()
        .map(|l| line_text(l, &order.currency))
        .collect();
    let total = money(order.total_cents, &order.currency);
    Mail {
        subject: format!("Your order {number}"),
        text: format!(
            "Hello {name},\n\nthank you for your order {number}:\n\n{}\n\nTotal: {total}\n",
            lines
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        html: format!(
            "<p>Hello {},</p><p>thank you for your order {number}:</p><ul>{}</ul><p>Total: <strong>{total}</strong></p>",
            escape(name),
            lines
                .iter()
                .map(|l| format!("<li>{}</li>", escape(l)))
                .collect::<String>()
        ),
    }
}

/// Sent on `order.status_changed` to `shipped`.
pub fn order_shipped(name: &str, order_id: uuid::Uuid) -> Mail {
    let number = short(order_id);
    Mail {
        subject: format!("Your order {number} is on its way"),
        text: format!("Hello {name},\n\nyour order {number} has shipped.\n"),
        html: format!(
            "<p>Hello {},</p><p>your order {number} has shipped.</p>",
            escape(name)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_html_only() {
        let mail = welcome("<Ada & Co>");
        assert!(mail.text.contains("<Ada & Co>"));
        assert!(mail.html.contains("&lt;Ada &amp; Co&gt;"));
    }

    #[test]
    fn a_confirmation_lists_items_and_total() {
        let order = OrderCreated {
            order_id: uuid::Uuid::nil(),
            user_id: uuid::Uuid::nil(),
            items: vec![OrderLine {
                product_id: uuid::Uuid::nil(),
                name: "Kettle".into(),
                unit_price_cents: 2599,
                quantity: 2,
            }],
            total_cents: 5198,
            currency: "EUR".into(),
        };
        let mail = order_confirmation("Ada", &order);
        assert!(mail.text.contains("2 x Kettle at 25.99 EUR"));
        assert!(mail.text.contains("Total: 51.98 EUR"));
        assert!(mail.html.contains("<li>2 x Kettle at 25.99 EUR</li>"));
    }
}
