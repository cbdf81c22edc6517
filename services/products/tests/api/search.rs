use std::collections::HashSet;

use serde_json::{Value, json};

use secrecy::ExposeSecret;

use crate::helpers::{Options, TestApp, assert_problem, id_of, names, product};

fn item(
    name: &str,
    description: &str,
    category: &str,
    tags: &[&str],
    price: i64,
    stock: i64,
) -> Value {
    let mut p = product(name);
    p["description"] = json!(description);
    p["category"] = json!(category);
    p["tags"] = json!(tags);
    p["price_cents"] = json!(price);
    p["stock"] = json!(stock);
    p
}

async fn catalogue(app: &TestApp) {
    app.create(vec![
        item(
            "Trail Running Shoe",
            "Grippy sole for mud.",
            "shoes",
            &["running", "trail"],
            8999,
            5,
        ),
        item(
            "Leather Dress Shoe",
            "Polished leather.",
            "shoes",
            &["leather", "formal"],
            12999,
            2,
        ),
        item(
            "Red Shoe Laces",
            "Spare laces, red.",
            "accessories",
            &["laces"],
            499,
            100,
        ),
        item(
            "Shoe Rack Red",
            "Holds twelve pairs.",
            "home",
            &["storage"],
            3999,
            0,
        ),
        item(
            "Apple iPhone 15",
            "A smartphone.",
            "electronics",
            &["phone"],
            99999,
            3,
        ),
        item(
            "Running Socks",
            "Cushioned socks for runners.",
            "clothing",
            &["running"],
            1299,
            40,
        ),
    ])
    .await;
}

#[tokio::test]
async fn stemming_finds_running_shoe_for_running_shoes() {
    let app = TestApp::spawn().await;
    catalogue(&app).await;
    let found = names(&app.get_json("/products?q=running%20shoes").await);
    assert_eq!(found[0], "Trail Running Shoe", "{found:?}");
}

#[tokio::test]
async fn a_typo_falls_back_to_similar_names() {
    let app = TestApp::spawn().await;
    catalogue(&app).await;
    assert_eq!(
        names(&app.get_json("/products?q=iphnoe").await),
        vec!["Apple iPhone 15"]
    );
}

#[tokio::test]
async fn a_phrase_matches_only_words_in_that_order() {
    let app = TestApp::spawn().await;
    catalogue(&app).await;
    let found = names(&app.get_json("/products?q=%22red%20shoe%22").await);
    assert_eq!(found, vec!["Red Shoe Laces"]);
}

#[tokio::test]
async fn a_minus_word_excludes() {
    let app = TestApp::spawn().await;
    catalogue(&app).await;
    let found: HashSet<String> = names(&app.get_json("/products?q=shoe%20-leather").await)
        .into_iter()
        .collect();
    assert!(found.contains("Trail Running Shoe"));
    assert!(!found.contains("Leather Dress Shoe"));
}

/// The catalogue with "mud" in a name (Mud Boot), in a tag (Garden Kneeler)
/// and in a description (Trail Running Shoe).
async fn muddy_catalogue(app: &TestApp) {
    catalogue(app).await;
    app.create(vec![
        item("Mud Boot", "Tall rubber boot.", "shoes", &["rain"], 4999, 1),
        item(
            "Garden Kneeler",
            "Pad for kneeling.",
            "garden",
            &["mud"],
            1999,
            1,
        ),
    ])
    .await;
}

#[tokio::test]
async fn name_matches_outrank_tag_and_description_matches() {
    let app = TestApp::spawn().await;
    muddy_catalogue(&app).await;
    let found = names(&app.get_json("/products?q=mud").await);
    assert_eq!(
        found,
        vec!["Mud Boot", "Garden Kneeler", "Trail Running Shoe"],
        "name, then tag, then description"
    );
}

#[tokio::test]
async fn an_excluded_word_leaves_the_ranking_of_the_other_words() {
    let app = TestApp::spawn().await;
    muddy_catalogue(&app).await;
    // The first ask is answered by Postgres, the second from the kept matches.
    for ask in ["first", "second"] {
        let found = names(&app.get_json("/products?q=mud%20-zebra").await);
        assert_eq!(
            found,
            vec!["Mud Boot", "Garden Kneeler", "Trail Running Shoe"],
            "{ask} ask: name, then tag, then description"
        );
    }
}

#[tokio::test]
async fn filters_combine_with_q_and_each_other() {
    let app = TestApp::spawn().await;
    catalogue(&app).await;
    assert_eq!(
        names(
            &app.get_json("/products?q=shoe&category=shoes&in_stock=true&max_price=10000")
                .await
        ),
        vec!["Trail Running Shoe"]
    );
    assert_eq!(
        names(&app.get_json("/products?tags=running&sort=price").await),
        vec!["Running Socks", "Trail Running Shoe"]
    );
    assert_eq!(
        names(&app.get_json("/products?tags=running,trail").await),
        vec!["Trail Running Shoe"]
    );
    assert_eq!(
        names(&app.get_json("/products?in_stock=false").await),
        vec!["Shoe Rack Red"]
    );
    assert_eq!(
        names(
            &app.get_json("/products?min_price=4000&max_price=13000&sort=-price")
                .await
        ),
        vec!["Leather Dress Shoe", "Trail Running Shoe"]
    );
    assert_eq!(
        names(&app.get_json("/products?category=SHOES&sort=name").await),
        vec!["Leather Dress Shoe", "Trail Running Shoe"]
    );
    assert!(names(&app.get_json("/products?q=shoe&category=electronics").await).is_empty());
}

/// The first `at_most` pages of `query`, following the cursors.
async fn pages(app: &TestApp, query: &str, at_most: usize) -> Vec<Value> {
    let mut pages: Vec<Value> = Vec::new();
    while pages.len() < at_most {
        let path = match pages.last().and_then(|page| page["next_cursor"].as_str()) {
            Some(cursor) => format!("/products?{query}&cursor={cursor}"),
            None if pages.is_empty() => format!("/products?{query}"),
            None => break,
        };
        pages.push(app.get_json(&path).await);
    }
    pages
}

/// Every product of `query`, page after page.
async fn walk(app: &TestApp, query: &str) -> Vec<Value> {
    pages(app, query, usize::MAX)
        .await
        .iter()
        .flat_map(|page| page["data"].as_array().expect("data").clone())
        .collect()
}

#[tokio::test]
async fn pages_cover_every_product_once_on_every_sort() {
    let app = TestApp::spawn().await;
    let items: Vec<Value> = (0..27)
        .map(|i| {
            item(
                &format!("Widget {}", i % 5),
                &format!("widget number {i}"),
                "misc",
                &["w"],
                100 * (i % 4) as i64,
                1,
            )
        })
        .collect();
    let all: HashSet<String> = app.create(items).await.iter().map(id_of).collect();
    for query in [
        "sort=price",
        "sort=-price",
        "sort=name",
        "sort=-name",
        "sort=created_at",
        "sort=-created_at",
        "sort=price,-name",
        "q=widget",
        "q=widget&sort=relevance",
        "q=widget&sort=-relevance,price",
        "q=widgte",
    ] {
        let seen: Vec<String> = walk(&app, &format!("{query}&limit=4"))
            .await
            .iter()
            .map(id_of)
            .collect();
        assert_eq!(seen.len(), 27, "{query}: no repeats");
        assert_eq!(
            seen.into_iter().collect::<HashSet<_>>(),
            all,
            "{query}: no gaps"
        );
    }
}

/// The names of every product of `query`, in order.
async fn walk_names(app: &TestApp, query: &str) -> Vec<String> {
    let products = Value::Array(walk(app, query).await);
    names(&json!({ "data": products }))
}

/// Two apps: one pages searches from matches kept in memory, the other (its
/// list cache off, and with it the kept matches) through Postgres.
async fn kept_and_direct() -> (TestApp, TestApp) {
    let kept = TestApp::spawn().await;
    let direct = TestApp::spawn_with(Options {
        list_cache_ttl_secs: Some(0),
        ..Options::default()
    })
    .await;
    (kept, direct)
}

#[tokio::test]
async fn searches_answer_the_same_from_kept_matches_and_from_postgres() {
    let (kept, direct) = kept_and_direct().await;
    for app in [&kept, &direct] {
        catalogue(app).await;
        let extra: Vec<Value> = (0..9)
            .map(|i| {
                item(
                    &format!("Shoe Box {}", ["b", "A", "a", "Z"][i % 4]),
                    "A box for a shoe.",
                    "home",
                    &["storage", "shoe"],
                    500 * (i % 3) as i64,
                    (i % 2) as i64,
                )
            })
            .collect();
        app.create(extra).await;
    }
    for query in [
        "q=shoe",
        "q=shoe&sort=name",
        "q=shoe&sort=-name",
        "q=shoe&sort=price,-name",
        "q=shoe&sort=-price",
        "q=shoe&sort=created_at",
        "q=shoe&sort=-relevance,name",
        "q=shoe&sort=-rating",
        "q=shoe&min_rating=0&sort=rating,name",
        "q=shoe&in_stock=true",
        "q=shoe&category=home&max_price=500",
        "q=shoe&tags=storage,shoe&min_price=500",
        "q=shoe%20-box",
        "q=%22shoe%20box%22",
        "q=shoe%20or%20socks",
        "q=shoo",
        "q=iphnoe",
        "q=box&category=shoes",
    ] {
        for limit in ["2", "100"] {
            let query = format!("{query}&limit={limit}");
            assert_eq!(
                walk_names(&kept, &query).await,
                walk_names(&direct, &query).await,
                "{query}"
            );
        }
    }
}

#[tokio::test]
async fn a_search_matching_more_products_than_are_kept_pages_through_postgres() {
    let app = TestApp::spawn().await;
    let db = sea_orm::Database::connect(app.db.url.expose_secret())
        .await
        .expect("connect");
    // Every demo description mentions a warranty.
    let count = products::search::MAX_MATCHES as usize + 500;
    products::seed::seed(&db, count, |_| {})
        .await
        .expect("seed");
    let mut seen = HashSet::new();
    let first = pages(&app, "q=warranty&sort=-relevance,name&limit=100", 3).await;
    assert_eq!(first.len(), 3);
    for page in &first {
        let data = page["data"].as_array().expect("data");
        assert_eq!(data.len(), 100);
        for product in data {
            assert!(seen.insert(id_of(product)), "no repeats");
        }
        assert!(page["next_cursor"].is_string(), "more pages");
    }
}

#[tokio::test]
async fn a_cursor_carrying_values_of_the_wrong_type_is_a_400() {
    use base64::Engine;
    let (kept, direct) = kept_and_direct().await;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        json!({"s": "price", "k": [{"t": "s", "v": "cheap"}, {"t": "u", "v": uuid::Uuid::nil()}]})
            .to_string(),
    );
    for app in [&kept, &direct] {
        catalogue(app).await;
        for query in ["q=shoe&sort=price", "sort=price"] {
            let response = app.get(&format!("/products?{query}&cursor={forged}")).await;
            assert_problem(response, 400).await;
        }
    }
}
