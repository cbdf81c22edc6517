use platform::ApiError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sqlx::Connection;
use testkit::TestDatabase;

async fn select_one(db: &DatabaseConnection) -> Result<(), ApiError> {
    db.execute(Statement::from_string(DbBackend::Postgres, "SELECT 1"))
        .await?;
    Ok(())
}

/// What a server restart does to pooled connections: the server ends every
/// session of the database ("terminating connection due to administrator
/// command").
async fn end_every_session(test: &TestDatabase) {
    let mut admin = sqlx::PgConnection::connect(&testkit::server_url())
        .await
        .expect("admin connection");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&test.name)
    .execute(&mut admin)
    .await
    .expect("terminate");
}

#[tokio::test]
async fn connections_broken_by_a_restart_answer_503_and_the_pool_recovers_at_once() {
    let test = TestDatabase::create("platform", sqlx::migrate!("./migrations"))
        .await
        .expect("a test database");
    let db = platform::db::connect_and_migrate(&test.url, 4, sqlx::migrate!("./migrations"))
        .await
        .expect("connect");
    // Every pooled connection in use once, so each is broken by the restart.
    let warm: Vec<_> = (0..4).map(|_| select_one(&db)).collect();
    for result in futures::future::join_all(warm).await {
        result.expect("a query");
    }

    end_every_session(&test).await;

    let mut unavailable = 0;
    for _ in 0..8 {
        match select_one(&db).await {
            Ok(()) => {}
            Err(err) => {
                assert_eq!(err.status(), 503, "{err}");
                unavailable += 1;
            }
        }
    }
    assert!(
        unavailable <= 1,
        "after the first broken connection, the pool checks the rest: {unavailable} failed"
    );
    select_one(&db).await.expect("recovered");
}
