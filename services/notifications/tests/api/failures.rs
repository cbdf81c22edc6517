use std::time::Duration;

use secrecy::ExposeSecret;

use crate::helpers::{Options, TestMail, once_each};

#[tokio::test]
async fn a_mail_that_keeps_failing_is_marked_failed_then_sent_when_retried() {
    let mail = TestMail::spawn_with(Options {
        max_attempts: 3,
        ..Options::default()
    })
    .await;
    mail.sink.reject(true);
    let users = mail.register(1).await;
    let email = users[0].1.clone();

    // Three attempts, then it is given up.
    let mut failed = 0;
    for _ in 0..100 {
        failed = mail
            .db
            .count("notifications WHERE status = 'failed' AND attempts = 3")
            .await;
        if failed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed, 1, "three failed attempts were made");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        mail.db.count("notifications WHERE attempts > 3").await,
        0,
        "then it stopped trying"
    );
    assert!(mail.sink.to(std::slice::from_ref(&email)).is_empty());

    mail.sink.reject(false);
    let db = sea_orm::Database::connect(mail.db.url.expose_secret())
        .await
        .expect("db");
    let queued = notifications::store::retry_failed(&db)
        .await
        .expect("retry");
    assert_eq!(queued, 1);
    let received = mail
        .sink
        .wait_for(std::slice::from_ref(&email), 1, 15)
        .await;
    once_each(&received, std::slice::from_ref(&email));
    mail.db
        .eventually("notifications WHERE status = 'sent'", 1)
        .await;
}

#[tokio::test]
async fn a_cut_broker_connection_loses_and_duplicates_nothing() {
    let mail = TestMail::spawn().await;
    let users = mail.register(6).await;
    let addresses: Vec<String> = users.iter().map(|(_, e)| e.clone()).collect();
    mail.sink.wait_for(&addresses, 2, 20).await;

    mail.broker.cut();
    tokio::time::sleep(Duration::from_secs(2)).await;
    mail.broker.restore();

    let received = mail.sink.wait_for(&addresses, 6, 40).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    once_each(&mail.sink.to(&addresses), &addresses);
    assert_eq!(received.len(), 6);
}

#[tokio::test]
async fn a_stopped_instance_is_replaced_by_the_other_with_nothing_lost() {
    let mail = TestMail::spawn_with(Options {
        instances: 2,
        ..Options::default()
    })
    .await;
    let users = mail.register(5).await;
    let addresses: Vec<String> = users.iter().map(|(_, e)| e.clone()).collect();
    mail.sink.wait_for(&addresses, 2, 20).await;

    mail.stop_instance(0);

    mail.sink.wait_for(&addresses, 5, 40).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = mail.sink.to(&addresses);
    once_each(&received, &addresses);
    let order: Vec<&String> = received.iter().map(|m| &m.to).collect();
    assert_eq!(
        order,
        addresses.iter().collect::<Vec<_>>(),
        "still in order"
    );
}

#[tokio::test]
async fn with_the_broker_down_registrations_succeed_and_mail_follows() {
    let mail = TestMail::spawn().await;
    mail.broker.cut();
    let users = mail.register(3).await;
    let addresses: Vec<String> = users.iter().map(|(_, e)| e.clone()).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(mail.sink.to(&addresses).is_empty());

    mail.broker.restore();

    let received = mail.sink.wait_for(&addresses, 3, 40).await;
    once_each(&received, &addresses);
}
