//! Searches answered from memory. Ranking every product some words match is
//! the expensive part of a search (a broad word matches thousands), while
//! shoppers ask the same words again and again with other filters, sorts and
//! pages. So the ranked matches of a search text are read from Postgres once
//! per cache generation and kept in this process; each request then filters,
//! sorts and pages them in memory and reads only its page's rows.
//!
//! Entries are keyed by the list cache's generation, which every edit,
//! deletion and sell-out moves on (on any replica, through Redis), so a search
//! never answers from matches older than the last such change.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::pagination::{Direction, KeyValue, PageRequest};
use sea_orm::FromQueryResult;
use uuid::Uuid;

use crate::store::{Matching, ProductFilter, ProductSort};

/// Most matches kept for one search text (a quarter of a 100,000-product
/// catalogue, about 4 MB); broader searches go to Postgres page by page.
pub const MAX_MATCHES: u64 = 25_000;

/// One product a search matched, as Postgres answers it.
#[derive(Debug, FromQueryResult)]
pub struct MatchRow {
    product_id: Uuid,
    rank: f64,
    price_cents: i64,
    created_at: DateTime<Utc>,
    name: String,
    category: String,
    tags: Vec<String>,
    in_stock: bool,
}

/// One product a search matched, with what filters and sorts read. Categories
/// and tags repeat across matches and are shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The product.
    pub product_id: Uuid,
    /// Its rank for the search text.
    pub rank: f64,
    /// Price in minor units.
    pub price_cents: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Name.
    pub name: Box<str>,
    /// Lower-cased category.
    pub category: Arc<str>,
    /// Lower-cased tags.
    pub tags: Box<[Arc<str>]>,
    /// Stock above zero.
    pub in_stock: bool,
}

/// Turns rows into matches, sharing each distinct category and tag.
pub fn matches_of(rows: Vec<MatchRow>) -> Vec<Match> {
    let mut shared: HashMap<String, Arc<str>> = HashMap::new();
    let mut share = |text: String| -> Arc<str> {
        shared
            .entry(text)
            .or_insert_with_key(|text| Arc::from(text.as_str()))
            .clone()
    };
    rows.into_iter()
        .map(|row| Match {
            product_id: row.product_id,
            rank: row.rank,
            price_cents: row.price_cents,
            created_at: row.created_at,
            name: row.name.into_boxed_str(),
            category: share(row.category),
            tags: row.tags.into_iter().map(&mut share).collect(),
            in_stock: row.in_stock,
        })
        .collect()
}

impl Match {
    fn admitted_by(&self, filter: &ProductFilter) -> bool {
        filter
            .category
            .as_deref()
            .is_none_or(|c| c == &*self.category)
            && filter
                .tags
                .iter()
                .all(|tag| self.tags.iter().any(|t| **t == **tag))
            && filter.min_price.is_none_or(|min| self.price_cents >= min)
            && filter.max_price.is_none_or(|max| self.price_cents <= max)
            && filter.in_stock.is_none_or(|wanted| wanted == self.in_stock)
    }

    /// This match's value of `key`, as a cursor carries it.
    pub fn key(&self, key: ProductSort) -> KeyValue {
        match key {
            ProductSort::Relevance => KeyValue::Float(self.rank),
            ProductSort::Price => KeyValue::Int(self.price_cents),
            ProductSort::CreatedAt => KeyValue::Time(self.created_at),
            ProductSort::Name => KeyValue::Text(self.name.to_string()),
        }
    }

    /// The sort-key values of this match followed by its id: what a cursor remembers.
    pub fn cursor_keys(&self, keys: &[(ProductSort, Direction)]) -> Vec<KeyValue> {
        let mut values: Vec<KeyValue> = keys.iter().map(|(key, _)| self.key(*key)).collect();
        values.push(KeyValue::Uuid(self.product_id));
        values
    }

    /// How this match orders against `value` on `key`, ascending.
    fn compare_key(&self, key: ProductSort, value: &KeyValue) -> Ordering {
        match (key, value) {
            (ProductSort::Relevance, KeyValue::Float(rank)) => self.rank.total_cmp(rank),
            (ProductSort::Price, KeyValue::Int(price)) => self.price_cents.cmp(price),
            (ProductSort::CreatedAt, KeyValue::Time(at)) => self.created_at.cmp(at),
            // The text order of Rust strings is byte order, as `COLLATE "C"` in SQL.
            (ProductSort::Name, KeyValue::Text(name)) => (*self.name).cmp(name.as_str()),
            // `PageRequest::parse` admits only cursors whose values fit their sort.
            _ => Ordering::Equal,
        }
    }
}

/// The order a sort list puts matches in: its keys, then the id in the
/// direction of the last key (as the SQL of the same list orders rows).
struct Order<'a> {
    keys: &'a [(ProductSort, Direction)],
    tiebreak: Direction,
}

fn directed(ordering: Ordering, direction: Direction) -> Ordering {
    match direction {
        Direction::Asc => ordering,
        Direction::Desc => ordering.reverse(),
    }
}

impl<'a> Order<'a> {
    fn new(keys: &'a [(ProductSort, Direction)]) -> Self {
        let tiebreak = keys
            .last()
            .map_or(Direction::Asc, |(_, direction)| *direction);
        Self { keys, tiebreak }
    }

    fn compare(&self, a: &Match, b: &Match) -> Ordering {
        for (key, direction) in self.keys {
            let ordering = match key {
                ProductSort::Relevance => a.rank.total_cmp(&b.rank),
                ProductSort::Price => a.price_cents.cmp(&b.price_cents),
                ProductSort::CreatedAt => a.created_at.cmp(&b.created_at),
                ProductSort::Name => a.name.cmp(&b.name),
            };
            if ordering != Ordering::Equal {
                return directed(ordering, *direction);
            }
        }
        directed(a.product_id.cmp(&b.product_id), self.tiebreak)
    }

    /// Whether `m` comes after the row a cursor remembers (`after`: the key
    /// values, then the id).
    fn comes_after(&self, m: &Match, after: &[KeyValue]) -> bool {
        for ((key, direction), value) in self.keys.iter().zip(after) {
            let ordering = directed(m.compare_key(*key, value), *direction);
            if ordering != Ordering::Equal {
                return ordering == Ordering::Greater;
            }
        }
        match after.get(self.keys.len()) {
            Some(KeyValue::Uuid(id)) => {
                directed(m.product_id.cmp(id), self.tiebreak) == Ordering::Greater
            }
            _ => true,
        }
    }
}

/// The matches on the requested page, in order: those `filter` admits, after
/// the cursor, at most `page.fetch_limit()` of them.
pub fn page<'m>(
    matches: &'m [Match],
    filter: &ProductFilter,
    page: &PageRequest<ProductSort>,
) -> Vec<&'m Match> {
    let order = Order::new(&page.sort.keys);
    let mut chosen: Vec<&Match> = matches
        .iter()
        .filter(|m| m.admitted_by(filter))
        .filter(|m| {
            page.after
                .as_ref()
                .is_none_or(|after| order.comes_after(m, after))
        })
        .collect();
    let wanted = page.fetch_limit() as usize;
    if chosen.len() > wanted {
        chosen.select_nth_unstable_by(wanted - 1, |a, b| order.compare(a, b));
        chosen.truncate(wanted);
    }
    chosen.sort_unstable_by(|a, b| order.compare(a, b));
    chosen
}

/// What a search text matched: every match, or word that there were too many to keep.
#[derive(Debug)]
pub enum Matches {
    /// Every live product the text matches, ranked.
    All(Vec<Match>),
    /// More than [`MAX_MATCHES`]: page through Postgres instead.
    TooMany,
}

impl Matches {
    fn weight(&self) -> u32 {
        match self {
            // Roughly the bytes an entry holds (shared strings not counted).
            Matches::All(all) => all
                .iter()
                .map(|m| {
                    std::mem::size_of::<Match>()
                        + m.name.len()
                        + m.tags.len() * std::mem::size_of::<Arc<str>>()
                })
                .sum::<usize>()
                .try_into()
                .unwrap_or(u32::MAX),
            Matches::TooMany => 64,
        }
    }
}

/// The ranked matches of recent search texts, per cache generation.
#[derive(Clone)]
pub struct MatchCache {
    entries: moka::future::Cache<(String, Matching, String), Arc<Matches>>,
}

impl std::fmt::Debug for MatchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatchCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl MatchCache {
    /// A cache of at most `max_bytes` (roughly) whose entries live `ttl`.
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, matches: &Arc<Matches>| matches.weight())
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The matches of `q` in `generation`, computed by `load` on a miss; many
    /// requests missing at once wait for one computation.
    pub async fn get_or_load<E, F>(
        &self,
        generation: &str,
        matching: Matching,
        q: &str,
        load: F,
    ) -> Result<Arc<Matches>, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<Matches, E>>,
    {
        let key = (generation.to_owned(), matching, q.to_owned());
        let hit = self.entries.contains_key(&key);
        let found = self
            .entries
            .try_get_with(key, async { load.await.map(Arc::new) })
            .await;
        let counter = if hit {
            "cache_hits_total"
        } else {
            "cache_misses_total"
        };
        metrics::counter!(counter, "cache" => "search_matches").increment(1);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::pagination::PageRequest;

    fn m(n: u128, rank: f64, price: i64, name: &str, tags: &[&str], in_stock: bool) -> Match {
        Match {
            product_id: Uuid::from_u128(n),
            rank,
            price_cents: price,
            created_at: DateTime::from_timestamp(1_700_000_000 + n as i64, 0).expect("a time"),
            name: name.into(),
            category: if n.is_multiple_of(2) { "even" } else { "odd" }.into(),
            tags: tags.iter().map(|t| Arc::from(*t)).collect(),
            in_stock,
        }
    }

    fn sample() -> Vec<Match> {
        vec![
            m(1, 0.5, 300, "b", &["x"], true),
            m(2, 0.9, 100, "a", &["x", "y"], true),
            m(3, 0.5, 200, "c", &[], false),
            m(4, 0.1, 100, "B", &["y"], true),
            m(5, 0.5, 100, "a", &["x"], true),
        ]
    }

    fn ids(page: &[&Match]) -> Vec<u128> {
        page.iter().map(|m| m.product_id.as_u128()).collect()
    }

    fn request(sort: &str, limit: i64) -> PageRequest<ProductSort> {
        PageRequest::parse(Some(limit), None, Some(sort), &[]).expect("a valid request")
    }

    #[test]
    fn relevance_orders_by_rank_then_id_in_the_same_direction() {
        let all = sample();
        let page = page(&all, &ProductFilter::default(), &request("-relevance", 10));
        assert_eq!(ids(&page), vec![2, 5, 3, 1, 4]);
    }

    #[test]
    fn names_order_by_bytes_as_collate_c_does() {
        let all = sample();
        let page = page(&all, &ProductFilter::default(), &request("name", 10));
        assert_eq!(ids(&page), vec![4, 2, 5, 1, 3]);
    }

    #[test]
    fn filters_combine() {
        let all = sample();
        let filter = ProductFilter {
            tags: vec!["x".into()],
            max_price: Some(200),
            in_stock: Some(true),
            category: Some("odd".into()),
            ..ProductFilter::default()
        };
        let page = page(&all, &filter, &request("price", 10));
        assert_eq!(ids(&page), vec![5]);
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let all = sample();
        for sort in ["-relevance", "price,-name", "-created_at", "name", "-price"] {
            let mut request = request(sort, 2);
            let mut seen = Vec::new();
            loop {
                let found = page(&all, &ProductFilter::default(), &request);
                let more = found.len() > 2;
                let shown: Vec<&Match> = found.into_iter().take(2).collect();
                seen.extend(ids(&shown));
                if !more {
                    break;
                }
                let last = shown.last().expect("a full page");
                request.after = Some(last.cursor_keys(&request.sort.keys));
            }
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![1, 2, 3, 4, 5], "{sort}: {seen:?}");
        }
    }
}
