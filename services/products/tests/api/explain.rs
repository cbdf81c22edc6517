//! Every list query shape of `GET /products`, planned over 100,000 products:
//! none may read the whole table.

use platform::pagination::{KeyValue, PageRequest};
use products::store::{
    Matching, ProductFilter, ProductSort, list_query, matches_query, search_page_query,
};
use sea_orm::{ConnectionTrait, DbBackend, QueryTrait, Statement, TransactionTrait};
use secrecy::ExposeSecret;

use crate::helpers::TestApp;

fn filter(
    q: Option<&str>,
    category: Option<&str>,
    tags: &[&str],
    min: Option<i64>,
    max: Option<i64>,
    in_stock: Option<bool>,
) -> ProductFilter {
    ProductFilter {
        q: q.map(str::to_owned),
        category: category.map(str::to_owned),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        min_price: min,
        max_price: max,
        in_stock,
        min_rating: None,
    }
}

fn rated(min_rating: f64, base: ProductFilter) -> ProductFilter {
    ProductFilter {
        min_rating: Some(min_rating),
        ..base
    }
}

/// The plan of `statement`, planned under the setting fuzzy matching uses.
async fn explain(db: &sea_orm::DatabaseConnection, statement: Statement) -> String {
    let explain = Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("EXPLAIN {}", statement.sql),
        statement.values.map(|v| v.0).unwrap_or_default(),
    );
    let txn = db.begin().await.expect("txn");
    txn.execute_unprepared(products::store::SIMILAR_SETTING)
        .await
        .expect("setting");
    let plan: Vec<String> = txn
        .query_all(explain)
        .await
        .expect("explain")
        .iter()
        .map(|row| row.try_get::<String>("", "QUERY PLAN").expect("plan line"))
        .collect();
    txn.rollback().await.expect("rollback");
    plan.join("\n")
}

#[tokio::test]
async fn no_list_query_scans_the_table() {
    let app = TestApp::spawn().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(app.db.url.expose_secret())
        .await
        .expect("pool");
    let db = sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
    products::seed::seed(&db, 100_000, |_| {})
        .await
        .expect("seed");
    db.execute_unprepared("ANALYZE products")
        .await
        .expect("analyze");

    let filters = [
        filter(None, None, &[], None, None, None),
        filter(None, Some("shoes"), &[], None, None, None),
        filter(None, None, &["leather"], None, None, None),
        filter(None, None, &[], Some(1000), Some(5000), None),
        filter(None, None, &[], None, None, Some(true)),
        filter(
            None,
            Some("electronics"),
            &["wireless"],
            Some(5000),
            None,
            Some(true),
        ),
        filter(Some("running shoe"), None, &[], None, None, None),
        filter(
            Some("headphones"),
            Some("electronics"),
            &[],
            None,
            Some(20000),
            None,
        ),
        filter(Some("wireless"), None, &[], None, None, Some(true)),
        rated(4.0, filter(None, None, &[], None, None, None)),
        rated(
            4.5,
            filter(None, Some("shoes"), &[], None, None, Some(true)),
        ),
        rated(3.0, filter(Some("headphones"), None, &[], None, None, None)),
    ];
    let sorts = [
        "-created_at",
        "created_at",
        "price",
        "-price",
        "name",
        "-name",
        "-relevance",
        "-rating",
        "rating",
    ];
    let mut checked = 0;
    for filter in &filters {
        for sort in sorts {
            if filter.q.is_none() && sort.contains("relevance") {
                continue;
            }
            for with_cursor in [false, true] {
                let mut page = PageRequest::<ProductSort>::parse(Some(20), None, Some(sort), &[])
                    .expect("page");
                if with_cursor {
                    let key = match page.sort.keys[0].0 {
                        ProductSort::Relevance => KeyValue::Float(0.1),
                        ProductSort::Price => KeyValue::Int(2999),
                        ProductSort::CreatedAt => {
                            KeyValue::Time(chrono::Utc::now() - chrono::Duration::days(90))
                        }
                        ProductSort::Name => KeyValue::Text("M".into()),
                        ProductSort::Rating => KeyValue::Float(4.2),
                    };
                    page.after = Some(vec![key, KeyValue::Uuid(uuid::Uuid::now_v7())]);
                }
                for matching in [Matching::Words, Matching::Similar] {
                    if filter.q.is_none() && matching == Matching::Similar {
                        continue;
                    }
                    let statement = match filter.q {
                        Some(_) => search_page_query(filter, &page, matching)
                            .into_statement(DbBackend::Postgres),
                        None => list_query(filter, &page).build(DbBackend::Postgres),
                    };
                    let plan = explain(&db, statement).await;
                    assert!(plan.contains("Limit"), "a plan was read:\n{plan}");
                    assert!(
                        !plan.contains("Seq Scan"),
                        "{filter:?} sort={sort} cursor={with_cursor} {matching:?}:\n{plan}"
                    );
                    checked += 1;
                }
            }
        }
    }
    // The ranked matches kept in memory for a search text (`products::search`).
    for q in ["running shoe", "headphones", "wireless", "iphnoe"] {
        for matching in [Matching::Words, Matching::Similar] {
            let statement = matches_query(q, matching).into_statement(DbBackend::Postgres);
            let plan = explain(&db, statement).await;
            assert!(
                !plan.contains("Seq Scan"),
                "matches of {q:?} {matching:?}:\n{plan}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "checked {checked} query shapes");
}
