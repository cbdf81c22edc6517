//! Every list query shape of the reviews API, planned over 200,000 reviews
//! of 2,000 products by 200,000 authors: none may read the whole table.

use platform::pagination::{KeyValue, PageRequest};
use reviews::store::{ReviewFilter, ReviewSort, list_query};
use sea_orm::{ConnectionTrait, DbBackend, QueryTrait, Statement};
use uuid::Uuid;

use crate::helpers::TestApp;

const SEED: &str = "
INSERT INTO reviews (review_id, product_id, user_id, author_name, rating, title, body,
                     verified_purchase, created_at, updated_at)
SELECT gen_random_uuid(),
       ('00000000-0000-0000-0000-' || lpad(to_hex(n % 2000), 12, '0'))::uuid,
       ('10000000-0000-0000-0000-' || lpad(to_hex(n), 12, '0'))::uuid,
       'Reader', 1 + n % 5, 'Title', 'Body', n % 3 = 0,
       now() - make_interval(mins => n), now()
FROM generate_series(1, 200000) AS n";

async fn plan(app: &TestApp, statement: Statement) -> String {
    let explain = Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("EXPLAIN {}", statement.sql),
        statement.values.map(|v| v.0).unwrap_or_default(),
    );
    let db = sea_orm::Database::connect(secrecy::ExposeSecret::expose_secret(&app.db.url))
        .await
        .expect("connect");
    db.query_all(explain)
        .await
        .expect("explain")
        .iter()
        .map(|row| row.try_get::<String>("", "QUERY PLAN").expect("plan line"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn no_review_list_reads_the_whole_table() {
    let app = TestApp::spawn().await;
    app.db.execute(SEED).await;
    app.db.execute("ANALYZE reviews").await;
    let product = Uuid::from_u128(7);
    let author = Uuid::from_u128((1 << 124) | 7);
    let filters = [
        ReviewFilter {
            product_id: Some(product),
            user_id: None,
            rating: None,
            verified: None,
        },
        ReviewFilter {
            product_id: Some(product),
            user_id: None,
            rating: Some(5),
            verified: None,
        },
        ReviewFilter {
            product_id: Some(product),
            user_id: None,
            rating: None,
            verified: Some(true),
        },
        ReviewFilter {
            product_id: Some(product),
            user_id: None,
            rating: Some(2),
            verified: Some(false),
        },
        ReviewFilter {
            product_id: None,
            user_id: Some(author),
            rating: None,
            verified: None,
        },
    ];
    let mut checked = 0;
    for filter in &filters {
        let sorts: &[&str] = if filter.user_id.is_some() {
            &["-created_at"]
        } else {
            &[
                "-created_at",
                "created_at",
                "rating",
                "-rating",
                "-rating,-created_at",
            ]
        };
        for sort in sorts {
            for with_cursor in [false, true] {
                let mut page = PageRequest::<ReviewSort>::parse(Some(20), None, Some(sort), &[])
                    .expect("page");
                if with_cursor {
                    let mut after: Vec<KeyValue> = page
                        .sort
                        .keys
                        .iter()
                        .map(|(key, _)| match key {
                            ReviewSort::CreatedAt => KeyValue::Time(chrono::Utc::now()),
                            ReviewSort::Rating => KeyValue::Int(3),
                        })
                        .collect();
                    after.push(KeyValue::Uuid(Uuid::now_v7()));
                    page.after = Some(after);
                }
                let statement = list_query(filter, &page).build(DbBackend::Postgres);
                let plan = plan(&app, statement).await;
                assert!(plan.contains("Index"), "{filter:?} sort={sort}:\n{plan}");
                assert!(
                    !plan.contains("Seq Scan"),
                    "{filter:?} sort={sort} cursor={with_cursor}:\n{plan}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "checked {checked} shapes");
}
