use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, id_of, user_item};

/// A private queue bound to the app's exchange for `user.*`, consumed by this test only.
async fn subscribe(app: &TestApp) -> (Connection, lapin::Consumer) {
    let exchange = format!("{}.{}", app.db.name, events::EXCHANGE);
    let connection = Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        ConnectionProperties::default(),
    )
    .await
    .expect("RabbitMQ is running");
    let channel = connection.create_channel().await.expect("channel");
    platform::broker::declare_exchange(&channel, &exchange)
        .await
        .expect("exchange");
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.as_str().into(),
            "user.*".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    (connection, consumer)
}

/// Receives events until one of each `(type, user_id)` in `wanted` arrived.
async fn receive(
    consumer: &mut lapin::Consumer,
    mut wanted: HashSet<(String, Uuid)>,
) -> Vec<Value> {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !wanted.is_empty() {
        let delivery = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .expect("events arrive in time")
            .expect("stream open")
            .expect("delivery");
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        let event: Value = serde_json::from_slice(&delivery.data).expect("JSON event");
        let key = (
            event["type"].as_str().expect("type").to_owned(),
            event["data"]["user_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("user_id"),
        );
        if wanted.remove(&key) {
            assert_eq!(
                delivery.routing_key.as_str(),
                key.0,
                "routing key is the event type"
            );
            received.push(event);
        }
    }
    received
}

#[tokio::test]
async fn creating_changing_and_deleting_users_publishes_their_events() {
    let app = TestApp::spawn().await;
    let (_connection, mut consumer) = subscribe(&app).await;

    let created = app
        .create(vec![user_item("Evented"), user_item("Other")])
        .await;
    let (a, b) = (id_of(&created[0]), id_of(&created[1]));
    app.patch(
        &format!("/users/{a}"),
        &app.admin,
        &json!({"name": "Renamed"}),
    )
    .await;
    app.delete(&format!("/users/{b}"), &app.admin).await;

    let wanted = HashSet::from([
        ("user.registered".to_owned(), a),
        ("user.registered".to_owned(), b),
        ("user.updated".to_owned(), a),
        ("user.deleted".to_owned(), b),
    ]);
    let events = receive(&mut consumer, wanted).await;

    let updated = events
        .iter()
        .find(|e| e["type"] == "user.updated")
        .expect("updated");
    assert_eq!(updated["data"]["name"], "Renamed");
    assert_eq!(updated["source"], "users");
    assert!(updated["id"].is_string() && updated["occurred_at"].is_string());
    let registered = events
        .iter()
        .find(|e| e["type"] == "user.registered")
        .expect("registered");
    assert_eq!(registered["data"]["email"], created[0]["email"]);
}

#[tokio::test]
async fn events_are_in_the_outbox_and_marked_published() {
    let app = TestApp::spawn().await;
    app.create(vec![user_item("One"), user_item("Two")]).await;
    assert_eq!(app.db.count("outbox").await, 2);
    for _ in 0..100 {
        if app.db.count("outbox WHERE published_at IS NULL").await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the relay did not publish the outbox");
}

#[tokio::test]
async fn with_the_broker_down_writes_succeed_and_events_wait_in_the_outbox() {
    let app = TestApp::spawn_with(|settings| {
        settings.amqp_url = SecretString::from("amqp://guest:guest@127.0.0.1:1/%2f");
    })
    .await;

    app.create(vec![user_item("Patient")]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;

    assert_eq!(app.db.count("outbox WHERE published_at IS NULL").await, 1);
    assert!(
        app.db.count("outbox WHERE attempts > 0").await >= 1,
        "the relay kept trying"
    );
    let ready = app.http.get(app.url("/readyz")).send().await.expect("sent");
    assert_eq!(
        ready.status(),
        200,
        "a broker outage must not take every replica out of rotation"
    );
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["checks"]["broker"], "unavailable");
}

#[tokio::test]
async fn an_old_unpublished_event_goes_out_while_new_writes_keep_the_relay_busy() {
    let app = TestApp::spawn().await;
    // A row as a replica that died before publishing would leave it.
    app.db
        .execute(
            "INSERT INTO outbox (id, event_type, payload, created_at)
         VALUES (gen_random_uuid(), 'user.updated', '{}', now() - interval '1 hour')",
        )
        .await;
    for n in 0..40 {
        // Each write wakes the relay for a pass over the newest rows only.
        app.create(vec![user_item(&format!("Busy {n}"))]).await;
        if app
            .db
            .count("outbox WHERE published_at IS NULL AND created_at < now() - interval '1 minute'")
            .await
            == 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the old row was never published");
}
