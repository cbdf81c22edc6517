//! Several writes sent as one statement: one round trip and one commit
//! instead of a transaction's `BEGIN`, a statement each and `COMMIT`, with the
//! same all-or-nothing outcome (a statement is atomic on its own).
//!
//! Each write becomes a data-modifying `WITH` part. They all see the database
//! as it was before the statement and run once each, so a write must not
//! read what another one writes (foreign keys are checked at the end of the
//! statement and do see them).

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// Writes gathered to run together; see the module documentation.
#[derive(Debug, Default)]
pub struct Writes {
    parts: Vec<String>,
    values: Vec<Value>,
}

impl Writes {
    /// No writes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an `INSERT`, `UPDATE` or `DELETE` with `$n` placeholders.
    pub fn push(&mut self, statement: Statement) {
        let offset = self.values.len();
        self.parts.push(shift_placeholders(&statement.sql, offset));
        self.values
            .extend(statement.values.map(|values| values.0).unwrap_or_default());
    }

    /// The writes as one statement; `None` when there are none.
    pub fn into_statement(self) -> Option<Statement> {
        let sql = match self.parts.len() {
            0 => return None,
            1 => self.parts.into_iter().next()?,
            _ => {
                let parts: Vec<String> = self
                    .parts
                    .iter()
                    .enumerate()
                    .map(|(n, part)| format!("write_{n} AS ({part})"))
                    .collect();
                format!("WITH {} SELECT 1", parts.join(", "))
            }
        };
        Some(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            self.values,
        ))
    }

    /// Runs every write, or none.
    pub async fn execute<C: ConnectionTrait>(self, db: &C) -> Result<(), DbErr> {
        if let Some(statement) = self.into_statement() {
            db.execute(statement).await?;
        }
        Ok(())
    }
}

impl Extend<Statement> for Writes {
    fn extend<I: IntoIterator<Item = Statement>>(&mut self, statements: I) {
        for statement in statements {
            self.push(statement);
        }
    }
}

/// `sql` with each placeholder `$n` outside quotes renumbered `$(n + offset)`.
fn shift_placeholders(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            // A doubled quote inside a literal closes and reopens it: same result.
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                // Only digits were taken, so this cannot fail.
                let n: usize = digits.parse().unwrap_or(0);
                out.push('$');
                out.push_str(&(n + offset).to_string());
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_but_quoted_text_is_not() {
        assert_eq!(
            shift_placeholders(r#"UPDATE "t$1" SET a = $1, b = '$2', c = $12"#, 3),
            r#"UPDATE "t$1" SET a = $4, b = '$2', c = $15"#
        );
    }

    #[test]
    fn writes_become_parts_of_one_statement_with_their_values_in_order() {
        let mut writes = Writes::new();
        writes.push(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO a (x) VALUES ($1)",
            [1.into()],
        ));
        writes.push(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO b (y, z) VALUES ($1, $2)",
            [2.into(), 3.into()],
        ));
        let statement = writes.into_statement().expect("two writes");
        assert_eq!(
            statement.sql,
            "WITH write_0 AS (INSERT INTO a (x) VALUES ($1)), \
             write_1 AS (INSERT INTO b (y, z) VALUES ($2, $3)) SELECT 1"
        );
        assert_eq!(statement.values.expect("values").0.len(), 3);
    }

    #[test]
    fn no_writes_is_no_statement() {
        assert!(Writes::new().into_statement().is_none());
    }
}
