use events::{Envelope, Event, UserDeleted};
use platform::outbox::Outbox;
use platform::writes::Writes;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use testkit::TestDatabase;
use uuid::Uuid;

async fn database() -> (TestDatabase, DatabaseConnection) {
    let test = TestDatabase::create("platform", sqlx::migrate!("./migrations"))
        .await
        .expect("a test database");
    let db = platform::db::connect_and_migrate(&test.url, 2, sqlx::migrate!("./migrations"))
        .await
        .expect("connect");
    (test, db)
}

fn event() -> Envelope {
    Envelope::new(
        "platform-test",
        Event::UserDeleted(UserDeleted {
            user_id: Uuid::now_v7(),
        }),
    )
}

async fn outbox_rows(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM outbox",
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get("", "n").expect("n")
}

#[tokio::test]
async fn every_write_lands_when_all_succeed() {
    let (_test, db) = database().await;
    let mut writes = Writes::new();
    writes.extend(Outbox::insert(&[event()]).expect("serialises"));
    writes.extend(Outbox::insert(&[event(), event()]).expect("serialises"));
    writes.execute(&db).await.expect("written");
    assert_eq!(outbox_rows(&db).await, 3);
}

#[tokio::test]
async fn no_write_lands_when_one_fails() {
    let (_test, db) = database().await;
    let twice = event();
    let mut writes = Writes::new();
    writes.extend(Outbox::insert(&[event()]).expect("serialises"));
    // The same event id twice breaks the outbox's primary key.
    writes.extend(Outbox::insert(&[twice.clone(), twice]).expect("serialises"));
    assert!(writes.execute(&db).await.is_err());
    assert_eq!(outbox_rows(&db).await, 0);
}
