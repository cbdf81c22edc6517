use secrecy::ExposeSecret;
use sqlx::Connection;

use crate::helpers::{TestAuth, unique};

async fn seed(app: &TestAuth) {
    app.register(&unique("purge"), "password-1").await;
    app.sql(
        &app.auth_db,
        "INSERT INTO refresh_tokens (token_id, user_id, family_id, expires_at)
         SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), now() - interval '1 minute'
         FROM generate_series(1, 3)",
    )
    .await;
}

async fn connect(app: &TestAuth) -> sea_orm::DatabaseConnection {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(app.auth_db.url.expose_secret())
        .await
        .expect("pool");
    sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
}

#[tokio::test]
async fn purging_deletes_only_expired_tokens() {
    let app = TestAuth::spawn().await;
    seed(&app).await;
    let db = connect(&app).await;

    let purged = auth::purge::purge_expired(&db).await.expect("purge");

    assert_eq!(purged, Some(3));
    assert_eq!(
        app.auth_db.count("refresh_tokens").await,
        1,
        "the live one stays"
    );
    assert_eq!(
        app.auth_db
            .count("refresh_tokens WHERE expires_at <= now()")
            .await,
        0
    );
}

#[tokio::test]
async fn only_one_replica_purges_at_a_time() {
    let app = TestAuth::spawn().await;
    seed(&app).await;
    let db = connect(&app).await;
    // Another replica is mid-purge: it holds the lock.
    let mut other = sqlx::PgConnection::connect(app.auth_db.url.expose_secret())
        .await
        .expect("connect");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(auth::purge::PURGE_LOCK)
        .execute(&mut other)
        .await
        .expect("lock");

    assert_eq!(auth::purge::purge_expired(&db).await.expect("purge"), None);
    assert_eq!(
        app.auth_db.count("refresh_tokens").await,
        4,
        "nothing deleted twice"
    );

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(auth::purge::PURGE_LOCK)
        .execute(&mut other)
        .await
        .expect("unlock");
    let (a, b) = tokio::join!(
        auth::purge::purge_expired(&db),
        auth::purge::purge_expired(&db)
    );
    let total: u64 = [a.expect("purge"), b.expect("purge")]
        .into_iter()
        .flatten()
        .sum();
    assert_eq!(total, 3, "racing purges delete each row once");
}
