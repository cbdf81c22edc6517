//! Searches answered from memory. Ranking every product some words match is
//! the expensive part of a search (a broad word matches thousands), while
//! shoppers ask the same words again and again with other filters, sorts and
//! pages. So the ranked matches of a search text are read from Postgres once
//! per cache generation and kept in this process; each request then filters,
//! sorts and pages them in memory and reads only its page's rows. A text is
//! kept from the second time it is asked for: the first time, Postgres
//! answers its one page with the filters applied, which costs a fraction of
//! ranking and sending every match of a text that may never come again.
//!
//! Entries are keyed by the list cache's generation, which every edit,
//! deletion and sell-out moves on (on any replica, through Redis), so a search
//! never answers from matches older than the last such change.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::pagination::{Direction, KeyValue, PageRequest};
use sea_orm::FromQueryResult;
use uuid::Uuid;

use crate::store::{Matching, ProductFilter, ProductSort};

/// Most matches kept for one search text (a quarter of a 100,000-product
/// catalogue, about 3 MB); broader searches go to Postgres page by page.
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
    rating_sum: i64,
    rating_count: i32,
}

/// One product a search matched, with what filters and sorts read. It owns
/// no memory: its name and labels live in the [`Matched`] that holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub product_id: Uuid,
    /// Its rank for the search text.
    pub rank: f64,
    /// Price in minor units.
    pub price_cents: i64,
    pub created_at: DateTime<Utc>,
    /// Where its name is in [`Matched::names`].
    name: (u32, u32),
    /// Where its tags' label numbers are in [`Matched::tags`].
    tags: (u32, u32),
    /// Its category's label number.
    category: u32,
    /// Stock above zero.
    pub in_stock: bool,
    /// Mean rating, 0 without reviews (as the `rating_average` column).
    pub rating: f64,
}

/// Every match of one search text, ranked, stored compactly: a few hundred
/// of these are kept per process, each up to [`MAX_MATCHES`] long.
#[derive(Debug, Default, PartialEq)]
pub struct Matched {
    matches: Vec<Match>,
    /// The names of all matches, one after another.
    names: String,
    /// The distinct lower-cased categories and tags, numbered by position.
    labels: Vec<Box<str>>,
    /// The tags' label numbers of all matches, one after another.
    tags: Vec<u32>,
}

fn position(len: usize) -> u32 {
    // At most MAX_MATCHES rows of bounded names and tags are stored.
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Builds a [`Matched`] row by row, as Postgres streams them, so that a load
/// never holds all of its rows at once.
#[derive(Debug, Default)]
pub struct MatchedBuilder {
    matched: Matched,
    numbers: HashMap<String, u32>,
}

impl MatchedBuilder {
    /// How many matches it holds so far.
    pub fn len(&self) -> usize {
        self.matched.matches.len()
    }

    /// True before the first match.
    pub fn is_empty(&self) -> bool {
        self.matched.matches.is_empty()
    }

    fn number(&mut self, label: String) -> u32 {
        let labels = &mut self.matched.labels;
        *self.numbers.entry(label).or_insert_with_key(|label| {
            labels.push(label.as_str().into());
            position(labels.len() - 1)
        })
    }

    /// Adds the next match, numbering its category and tags.
    pub fn push(&mut self, row: MatchRow) {
        let name_start = position(self.matched.names.len());
        self.matched.names.push_str(&row.name);
        let tags_start = position(self.matched.tags.len());
        for tag in row.tags {
            let n = self.number(tag);
            self.matched.tags.push(n);
        }
        let category = self.number(row.category);
        let matched = &mut self.matched;
        matched.matches.push(Match {
            product_id: row.product_id,
            rank: row.rank,
            price_cents: row.price_cents,
            created_at: row.created_at,
            name: (name_start, position(matched.names.len())),
            tags: (tags_start, position(matched.tags.len())),
            category,
            in_stock: row.in_stock,
            rating: crate::domain::rating_key(row.rating_sum, row.rating_count),
        });
    }

    /// The matches, their buffers trimmed to size.
    pub fn finish(self) -> Matched {
        let mut matched = self.matched;
        matched.matches.shrink_to_fit();
        matched.names.shrink_to_fit();
        matched.tags.shrink_to_fit();
        matched
    }
}

impl Matched {
    /// The matches, in the order they were read.
    pub fn iter(&self) -> std::slice::Iter<'_, Match> {
        self.matches.iter()
    }

    /// True without a match.
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }

    /// Stores `rows`, numbering each distinct category and tag once.
    pub fn from_rows(rows: Vec<MatchRow>) -> Self {
        let mut builder = MatchedBuilder::default();
        for row in rows {
            builder.push(row);
        }
        builder.finish()
    }

    fn name(&self, m: &Match) -> &str {
        self.names
            .get(m.name.0 as usize..m.name.1 as usize)
            .unwrap_or_default()
    }

    fn tags(&self, m: &Match) -> &[u32] {
        self.tags
            .get(m.tags.0 as usize..m.tags.1 as usize)
            .unwrap_or_default()
    }

    fn label(&self, text: &str) -> Option<u32> {
        self.labels
            .iter()
            .position(|label| &**label == text)
            .map(position)
    }

    /// Roughly the bytes this holds.
    fn weight(&self) -> usize {
        self.matches.capacity() * std::mem::size_of::<Match>()
            + self.names.capacity()
            + self.tags.capacity() * std::mem::size_of::<u32>()
            + self
                .labels
                .iter()
                .map(|label| label.len() + std::mem::size_of::<Box<str>>())
                .sum::<usize>()
    }

    /// `filter` with its category and tags as label numbers; `None` when one
    /// of them is no label here, so that no match can pass.
    fn numbered(&self, filter: &ProductFilter) -> Option<Admits> {
        let category = match filter.category.as_deref() {
            Some(category) => Some(self.label(category)?),
            None => None,
        };
        let tags = filter
            .tags
            .iter()
            .map(|tag| self.label(tag))
            .collect::<Option<Vec<u32>>>()?;
        Some(Admits {
            category,
            tags,
            min_price: filter.min_price,
            max_price: filter.max_price,
            in_stock: filter.in_stock,
            min_rating: filter.min_rating,
        })
    }

    /// `m`'s value of `key`, as a cursor carries it.
    pub fn key(&self, m: &Match, key: ProductSort) -> KeyValue {
        match key {
            ProductSort::Relevance => KeyValue::Float(m.rank),
            ProductSort::Price => KeyValue::Int(m.price_cents),
            ProductSort::CreatedAt => KeyValue::Time(m.created_at),
            ProductSort::Name => KeyValue::Text(self.name(m).to_owned()),
            ProductSort::Rating => KeyValue::Float(m.rating),
        }
    }

    /// The sort-key values of `m` followed by its id: what a cursor remembers.
    pub fn cursor_keys(&self, m: &Match, keys: &[(ProductSort, Direction)]) -> Vec<KeyValue> {
        let mut values: Vec<KeyValue> = keys.iter().map(|(key, _)| self.key(m, *key)).collect();
        values.push(KeyValue::Uuid(m.product_id));
        values
    }

    /// How `m` orders against `value` on `key`, ascending.
    fn compare_key(&self, m: &Match, key: ProductSort, value: &KeyValue) -> Ordering {
        match (key, value) {
            (ProductSort::Relevance, KeyValue::Float(rank)) => m.rank.total_cmp(rank),
            (ProductSort::Price, KeyValue::Int(price)) => m.price_cents.cmp(price),
            (ProductSort::CreatedAt, KeyValue::Time(at)) => m.created_at.cmp(at),
            // The text order of Rust strings is byte order, as `COLLATE "C"` in SQL.
            (ProductSort::Name, KeyValue::Text(name)) => self.name(m).cmp(name.as_str()),
            (ProductSort::Rating, KeyValue::Float(rating)) => m.rating.total_cmp(rating),
            // `PageRequest::parse` admits only cursors whose values fit their sort.
            _ => Ordering::Equal,
        }
    }
}

/// A filter in the terms of one [`Matched`].
struct Admits {
    category: Option<u32>,
    tags: Vec<u32>,
    min_price: Option<i64>,
    max_price: Option<i64>,
    in_stock: Option<bool>,
    min_rating: Option<f64>,
}

impl Admits {
    fn admit(&self, m: &Match, tags: &[u32]) -> bool {
        self.category.is_none_or(|c| c == m.category)
            && self.tags.iter().all(|tag| tags.contains(tag))
            && self.min_price.is_none_or(|min| m.price_cents >= min)
            && self.max_price.is_none_or(|max| m.price_cents <= max)
            && self.in_stock.is_none_or(|wanted| wanted == m.in_stock)
            && self.min_rating.is_none_or(|min| m.rating >= min)
    }
}

/// The order a sort list puts matches in: its keys, then the id in the
/// direction of the last key (as the SQL of the same list orders rows).
struct Order<'a> {
    matched: &'a Matched,
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
    fn new(matched: &'a Matched, keys: &'a [(ProductSort, Direction)]) -> Self {
        let tiebreak = keys
            .last()
            .map_or(Direction::Asc, |(_, direction)| *direction);
        Self {
            matched,
            keys,
            tiebreak,
        }
    }

    fn compare(&self, a: &Match, b: &Match) -> Ordering {
        for (key, direction) in self.keys {
            let ordering = match key {
                ProductSort::Relevance => a.rank.total_cmp(&b.rank),
                ProductSort::Price => a.price_cents.cmp(&b.price_cents),
                ProductSort::CreatedAt => a.created_at.cmp(&b.created_at),
                ProductSort::Name => self.matched.name(a).cmp(self.matched.name(b)),
                ProductSort::Rating => a.rating.total_cmp(&b.rating),
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
            let ordering = directed(self.matched.compare_key(m, *key, value), *direction);
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
    matched: &'m Matched,
    filter: &ProductFilter,
    page: &PageRequest<ProductSort>,
) -> Vec<&'m Match> {
    let Some(admits) = matched.numbered(filter) else {
        return Vec::new();
    };
    let order = Order::new(matched, &page.sort.keys);
    let mut chosen: Vec<&Match> = matched
        .matches
        .iter()
        .filter(|m| admits.admit(m, matched.tags(m)))
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
    All(Matched),
    /// More than [`MAX_MATCHES`]: page through Postgres instead.
    TooMany,
}

impl Matches {
    fn weight(&self) -> u32 {
        match self {
            Matches::All(matched) => matched.weight().try_into().unwrap_or(u32::MAX),
            Matches::TooMany => 64,
        }
    }
}

/// The ranked matches of recent search texts, per cache generation.
#[derive(Clone)]
pub struct MatchCache {
    entries: moka::future::Cache<MatchKey, Arc<Matches>>,
    /// Fingerprints of the texts asked for once: a text's matches are kept
    /// only when it is asked for again. Most texts asked for once are never
    /// asked for again (a typo, a one-off phrase), and ranking and storing
    /// every match of a broad word costs many times its one page from
    /// Postgres, and would push out the texts shoppers do repeat.
    asked_once: moka::future::Cache<u64, ()>,
    fingerprints: std::hash::RandomState,
    loads: Arc<tokio::sync::Semaphore>,
}

type MatchKey = (String, Matching, String);

/// Loads of different texts running at once. A load builds all of its text's
/// matches in memory (megabytes for a broad word), and Postgres ranks no
/// faster with more of them at once than it has cores.
const LOADS_AT_ONCE: usize = 4;

/// Texts remembered as asked for once (8 bytes each, plus moka's own entry).
const ASKED_ONCE_REMEMBERED: u64 = 20_000;

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
            asked_once: moka::future::Cache::builder()
                .max_capacity(ASKED_ONCE_REMEMBERED)
                .time_to_live(ttl)
                .build(),
            fingerprints: std::hash::RandomState::new(),
            loads: Arc::new(tokio::sync::Semaphore::new(LOADS_AT_ONCE)),
        }
    }

    /// The matches of `q` in `generation`, computed by `load` on a miss; many
    /// requests missing at once wait for one computation. `None` the first
    /// time `q` is asked for in `generation`: answer that one from Postgres.
    pub async fn get_or_load<E, F>(
        &self,
        generation: &str,
        matching: Matching,
        q: &str,
        load: F,
    ) -> Result<Option<Arc<Matches>>, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<Matches, E>>,
    {
        let key = (generation.to_owned(), matching, q.to_owned());
        if let Some(kept) = self.entries.get(&key).await {
            metrics::counter!("cache_hits_total", "cache" => "search_matches").increment(1);
            return Ok(Some(kept));
        }
        let fingerprint = self.fingerprints.hash_one(&key);
        if !self.asked_once.contains_key(&fingerprint) {
            self.asked_once.insert(fingerprint, ()).await;
            metrics::counter!("search_texts_first_asked_total").increment(1);
            return Ok(None);
        }
        metrics::counter!("cache_misses_total", "cache" => "search_matches").increment(1);
        self.entries
            .try_get_with(key, async {
                // The semaphore is never closed, so a permit always comes.
                let _permit = self.loads.acquire().await.ok();
                load.await.map(Arc::new)
            })
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::pagination::PageRequest;

    fn row(n: u128, rank: f64, price: i64, name: &str, tags: &[&str], in_stock: bool) -> MatchRow {
        MatchRow {
            product_id: Uuid::from_u128(n),
            rank,
            price_cents: price,
            created_at: DateTime::from_timestamp(1_700_000_000 + n as i64, 0).expect("a time"),
            name: name.into(),
            category: if n.is_multiple_of(2) { "even" } else { "odd" }.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            in_stock,
            rating_sum: (n % 5 + 1) as i64,
            rating_count: 1,
        }
    }

    fn sample() -> Matched {
        Matched::from_rows(vec![
            row(1, 0.5, 300, "b", &["x"], true),
            row(2, 0.9, 100, "a", &["x", "y"], true),
            row(3, 0.5, 200, "c", &[], false),
            row(4, 0.1, 100, "B", &["y"], true),
            row(5, 0.5, 100, "a", &["x"], true),
        ])
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
        for sort in [
            "-relevance",
            "price,-name",
            "-created_at",
            "name",
            "-price",
            "-rating,name",
        ] {
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
                request.after = Some(all.cursor_keys(last, &request.sort.keys));
            }
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![1, 2, 3, 4, 5], "{sort}: {seen:?}");
        }
    }

    #[test]
    fn a_category_or_tag_that_no_match_has_admits_nothing() {
        let all = sample();
        for filter in [
            ProductFilter {
                category: Some("none".into()),
                ..ProductFilter::default()
            },
            ProductFilter {
                tags: vec!["x".into(), "z".into()],
                ..ProductFilter::default()
            },
        ] {
            assert!(page(&all, &filter, &request("price", 10)).is_empty());
        }
    }

    #[test]
    fn each_match_reads_back_its_own_name_and_tags() {
        let all = sample();
        let second = &all.matches[1];
        assert_eq!(all.name(second), "a");
        let tags: Vec<&str> = all
            .tags(second)
            .iter()
            .map(|n| &*all.labels[*n as usize])
            .collect();
        assert_eq!(tags, vec!["x", "y"]);
        assert_eq!(&*all.labels[second.category as usize], "even");
        assert_eq!(all.matches.len(), 5);
    }

    #[tokio::test]
    async fn a_text_is_kept_from_the_second_time_it_is_asked_for() {
        let cache = MatchCache::new(1 << 20, Duration::from_secs(60));
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let ask = |generation: &'static str| {
            cache.get_or_load(generation, Matching::Words, "shoe", async {
                loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, ()>(Matches::All(sample()))
            })
        };
        let kept = |answer: Result<Option<Arc<Matches>>, Arc<()>>| {
            answer.expect("loads cannot fail here").is_some()
        };
        assert!(!kept(ask("g1").await), "the first time is Postgres's");
        assert!(kept(ask("g1").await), "the second time loads");
        assert!(kept(ask("g1").await), "later times read what was kept");
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(!kept(ask("g2").await), "a new generation starts over");
    }
}
