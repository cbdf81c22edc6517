//! Keyset pagination: `limit`, opaque `cursor`, and `sort` lists such as
//! `-created_at,name`, turned into `ORDER BY` and a `WHERE` that resumes after
//! the last row of the previous page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, SimpleExpr};
use sea_orm::{EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select, Value};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 20;
/// Largest page a client may ask for.
pub const MAX_LIMIT: u64 = 100;

/// A field a list endpoint can sort by.
pub trait SortField: Copy + PartialEq + Sized + 'static {
    /// Every sortable field.
    const ALL: &'static [Self];
    /// The name clients use in `sort=`.
    fn name(self) -> &'static str;
    /// The kind of value this field's cursor position is.
    fn kind(self) -> KeyKind;
}

/// What kind of value a sort key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Text.
    Text,
    /// Whole number.
    Int,
    /// Floating-point number.
    Float,
    /// Point in time.
    Time,
    /// UUID.
    Uuid,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl Direction {
    /// The SeaORM order.
    pub fn order(self) -> Order {
        match self {
            Direction::Asc => Order::Asc,
            Direction::Desc => Order::Desc,
        }
    }
}

/// A parsed `sort=` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort<F> {
    /// The keys, most significant first.
    pub keys: Vec<(F, Direction)>,
}

impl<F: SortField> Sort<F> {
    /// Parses `raw` (`name,-created_at`); unknown or repeated fields are a 400.
    pub fn parse(raw: Option<&str>, default: &[(F, Direction)]) -> Result<Self, ApiError> {
        let Some(raw) = raw.filter(|raw| !raw.trim().is_empty()) else {
            return Ok(Self {
                keys: default.to_vec(),
            });
        };
        let mut keys: Vec<(F, Direction)> = Vec::new();
        for part in raw.split(',').map(str::trim) {
            let (name, direction) = match part.strip_prefix('-') {
                Some(name) => (name, Direction::Desc),
                None => (part.strip_prefix('+').unwrap_or(part), Direction::Asc),
            };
            let field = F::ALL
                .iter()
                .copied()
                .find(|field| field.name() == name)
                .ok_or_else(|| {
                    let allowed: Vec<&str> = F::ALL.iter().map(|f| f.name()).collect();
                    ApiError::BadRequest(format!(
                        "cannot sort by `{name}`; sort fields are: {}",
                        allowed.join(", ")
                    ))
                })?;
            if keys.iter().any(|(seen, _)| *seen == field) {
                return Err(ApiError::BadRequest(format!(
                    "`{name}` appears twice in `sort`"
                )));
            }
            keys.push((field, direction));
        }
        Ok(Self { keys })
    }

    /// The canonical text of this sort, bound into cursors.
    fn signature(&self) -> String {
        self.keys
            .iter()
            .map(|(field, direction)| match direction {
                Direction::Asc => field.name().to_owned(),
                Direction::Desc => format!("-{}", field.name()),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One value of a sort key, as carried in a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v")]
pub enum KeyValue {
    #[serde(rename = "s")]
    Text(String),
    /// Whole number.
    #[serde(rename = "i")]
    Int(i64),
    /// Floating-point number (relevance ranks).
    #[serde(rename = "f")]
    Float(f64),
    /// Point in time.
    #[serde(rename = "t")]
    Time(DateTime<Utc>),
    #[serde(rename = "u")]
    Uuid(Uuid),
}

impl KeyValue {
    /// The kind of value this is.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeyValue::Text(_) => KeyKind::Text,
            KeyValue::Int(_) => KeyKind::Int,
            KeyValue::Float(_) => KeyKind::Float,
            KeyValue::Time(_) => KeyKind::Time,
            KeyValue::Uuid(_) => KeyKind::Uuid,
        }
    }
}

impl From<KeyValue> for Value {
    fn from(value: KeyValue) -> Self {
        match value {
            KeyValue::Text(text) => text.into(),
            KeyValue::Int(int) => int.into(),
            KeyValue::Float(float) => float.into(),
            KeyValue::Time(time) => time.into(),
            KeyValue::Uuid(uuid) => uuid.into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// The sort the cursor was made for.
    s: String,
    /// How the list was computed, when it can be computed more than one way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<String>,
    /// The sort-key values of the last row, then its id.
    k: Vec<KeyValue>,
}

/// `limit`, `cursor` and `sort` of one list request, validated.
#[derive(Debug, Clone)]
pub struct PageRequest<F> {
    /// Rows per page.
    pub limit: u64,
    pub sort: Sort<F>,
    /// Key values of the last row already seen (the sort keys, then the id).
    pub after: Option<Vec<KeyValue>>,
    /// How the first page was computed (say, a fuzzy fallback); later pages keep it.
    pub mode: Option<String>,
}

impl<F: SortField> PageRequest<F> {
    /// Validates the raw query values.
    pub fn parse(
        limit: Option<i64>,
        cursor: Option<&str>,
        sort: Option<&str>,
        default_sort: &[(F, Direction)],
    ) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as u64,
            Some(n) => {
                return Err(ApiError::BadRequest(format!(
                    "`limit` must be between 1 and {MAX_LIMIT}, not {n}"
                )));
            }
        };
        let sort = Sort::parse(sort, default_sort)?;
        let mut mode = None;
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(raw) => {
                let bad =
                    || ApiError::BadRequest("`cursor` is not a cursor this list issued".into());
                let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
                let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| bad())?;
                if body.s != sort.signature() {
                    return Err(ApiError::BadRequest(
                        "`cursor` was issued for a different `sort`; keep `sort` the same across pages"
                            .into(),
                    ));
                }
                // Values of another kind than the sort's would reach SQL as a
                // comparison of mismatched types: refuse the cursor here.
                let kinds = sort
                    .keys
                    .iter()
                    .map(|(field, _)| field.kind())
                    .chain([KeyKind::Uuid]);
                if body.k.len() != sort.keys.len() + 1
                    || !body.k.iter().map(KeyValue::kind).eq(kinds)
                {
                    return Err(bad());
                }
                mode = body.m;
                Some(body.k)
            }
        };
        Ok(Self {
            limit,
            sort,
            after,
            mode,
        })
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.limit + 1
    }

    /// `query` in this page's order and no further: sorted by each key (its
    /// SQL from `expr`) and then by `id` in the direction of the last key,
    /// starting after the cursor's row, limited to [`Self::fetch_limit`].
    pub fn apply<E: EntityTrait>(
        &self,
        mut query: Select<E>,
        expr: impl Fn(F) -> SimpleExpr,
        id: SimpleExpr,
    ) -> Select<E> {
        let tiebreak = self
            .sort
            .keys
            .last()
            .map_or(Direction::Asc, |(_, direction)| *direction);
        let mut keys: Vec<(SimpleExpr, Direction)> = self
            .sort
            .keys
            .iter()
            .map(|(key, direction)| (expr(*key), *direction))
            .collect();
        keys.push((id, tiebreak));
        if let Some(after) = &self.after {
            query = query.filter(after_condition(&keys, after));
        }
        for (expr, direction) in keys {
            query = query.order_by(expr, direction.order());
        }
        query.limit(self.fetch_limit())
    }

    /// Trims the fetched rows to the page and makes the next cursor from the last one.
    /// `key_of` gives a row's sort-key values followed by its id.
    pub fn finish<T>(&self, mut rows: Vec<T>, key_of: impl Fn(&T) -> Vec<KeyValue>) -> Page<T> {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if more => {
                let body = CursorBody {
                    s: self.sort.signature(),
                    m: self.mode.clone(),
                    k: key_of(last),
                };
                serde_json::to_vec(&body)
                    .ok()
                    .map(|json| URL_SAFE_NO_PAD.encode(json))
            }
            _ => None,
        };
        Page {
            data: rows,
            next_cursor,
        }
    }
}

/// The condition "comes after `after` in this order": for keys k1..kn and the
/// id, `k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...`, with `<` for descending keys.
/// `columns` pairs each sort key's column with its direction, the id column last.
pub fn after_condition(columns: &[(SimpleExpr, Direction)], after: &[KeyValue]) -> Condition {
    let mut any = Condition::any();
    for i in 0..columns.len().min(after.len()) {
        let mut all = Condition::all();
        for j in 0..i {
            all = all.add(Expr::expr(columns[j].0.clone()).eq(Value::from(after[j].clone())));
        }
        let (column, direction) = &columns[i];
        let value = Value::from(after[i].clone());
        all = all.add(match direction {
            Direction::Asc => Expr::expr(column.clone()).gt(value),
            Direction::Desc => Expr::expr(column.clone()).lt(value),
        });
        any = any.add(all);
    }
    any
}

/// One page of a list: `{"data": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The rows of this page.
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page with no rows and no next page.
    pub fn empty() -> Self {
        Self {
            data: Vec::new(),
            next_cursor: None,
        }
    }

    /// The same page with each row converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Field {
        Name,
        CreatedAt,
    }

    impl SortField for Field {
        const ALL: &'static [Self] = &[Field::Name, Field::CreatedAt];
        fn name(self) -> &'static str {
            match self {
                Field::Name => "name",
                Field::CreatedAt => "created_at",
            }
        }
        fn kind(self) -> KeyKind {
            match self {
                Field::Name => KeyKind::Text,
                Field::CreatedAt => KeyKind::Time,
            }
        }
    }

    const DEFAULT: &[(Field, Direction)] = &[(Field::CreatedAt, Direction::Desc)];

    #[test]
    fn sort_parses_directions_and_rejects_unknown_fields() {
        let sort = Sort::parse(Some("-created_at,name"), DEFAULT).expect("valid sort");
        assert_eq!(
            sort.keys,
            vec![
                (Field::CreatedAt, Direction::Desc),
                (Field::Name, Direction::Asc)
            ]
        );
        assert!(Sort::<Field>::parse(Some("price"), DEFAULT).is_err());
        assert!(Sort::<Field>::parse(Some("name,-name"), DEFAULT).is_err());
        assert_eq!(Sort::parse(None, DEFAULT).expect("default").keys, DEFAULT);
    }

    #[test]
    fn limit_is_bounded() {
        assert!(PageRequest::<Field>::parse(Some(0), None, None, DEFAULT).is_err());
        assert!(PageRequest::<Field>::parse(Some(101), None, None, DEFAULT).is_err());
        let page = PageRequest::<Field>::parse(None, None, None, DEFAULT).expect("defaults");
        assert_eq!(page.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_sort() {
        let request = PageRequest::<Field>::parse(Some(1), None, Some("name"), DEFAULT)
            .expect("valid request");
        let id = Uuid::now_v7();
        let page = request.finish(vec!["a", "b"], |row| {
            vec![KeyValue::Text((*row).to_owned()), KeyValue::Uuid(id)]
        });
        assert_eq!(page.data, vec!["a"]);
        let cursor = page.next_cursor.expect("a second page exists");
        let next = PageRequest::<Field>::parse(Some(1), Some(&cursor), Some("name"), DEFAULT)
            .expect("cursor accepted");
        assert_eq!(
            next.after,
            Some(vec![KeyValue::Text("a".into()), KeyValue::Uuid(id)])
        );
        assert!(
            PageRequest::<Field>::parse(Some(1), Some(&cursor), Some("-name"), DEFAULT).is_err()
        );
        assert!(
            PageRequest::<Field>::parse(Some(1), Some("garbage!"), Some("name"), DEFAULT).is_err()
        );
    }

    #[test]
    fn a_cursor_whose_values_do_not_fit_its_sort_is_refused() {
        let forged = |k: serde_json::Value| {
            URL_SAFE_NO_PAD.encode(serde_json::json!({"s": "name", "k": k}).to_string())
        };
        let id = Uuid::now_v7();
        let good = forged(serde_json::json!([{"t": "s", "v": "a"}, {"t": "u", "v": id}]));
        assert!(PageRequest::<Field>::parse(Some(1), Some(&good), Some("name"), DEFAULT).is_ok());
        for k in [
            serde_json::json!([{"t": "i", "v": 3}, {"t": "u", "v": id}]),
            serde_json::json!([{"t": "s", "v": "a"}, {"t": "s", "v": "b"}]),
        ] {
            let cursor = forged(k);
            assert!(
                PageRequest::<Field>::parse(Some(1), Some(&cursor), Some("name"), DEFAULT).is_err()
            );
        }
    }

    #[test]
    fn last_page_has_no_cursor() {
        let request = PageRequest::<Field>::parse(Some(5), None, None, DEFAULT).expect("valid");
        let page = request.finish(vec![1, 2], |_| vec![]);
        assert!(page.next_cursor.is_none());
    }
}
