use std::time::Duration;

use events::{Envelope, Event, OrderCreated, OrderLine, OrderStatusChanged, UserProfile};
use uuid::Uuid;

use crate::helpers::{TestMail, once_each};

#[tokio::test]
async fn twenty_registrations_give_twenty_welcome_mails_in_order_a_second_apart() {
    let mail = TestMail::spawn().await;
    let users = mail.register(20).await;
    let addresses: Vec<String> = users.iter().map(|(_, email)| email.clone()).collect();

    let received = mail.sink.wait_for(&addresses, 20, 60).await;

    assert_eq!(received.len(), 20);
    once_each(&received, &addresses);
    let order: Vec<&String> = received.iter().map(|m| &m.to).collect();
    assert_eq!(
        order,
        addresses.iter().collect::<Vec<_>>(),
        "in the order the events arrived"
    );
    for pair in received.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(1000),
            "two mails {gap:?} apart"
        );
    }
    assert!(received.iter().all(|m| m.subject == "Welcome to the shop"));
    // The sink has a mail a moment before the sender records it as sent.
    mail.db
        .eventually(
            "notifications WHERE status = 'sent' AND kind = 'welcome'",
            20,
        )
        .await;
}

/// An `order.created` of `quantity` kettles.
fn order_created(order_id: Uuid, user_id: Uuid, quantity: i32) -> Event {
    Event::OrderCreated(OrderCreated {
        order_id,
        user_id,
        items: vec![OrderLine {
            product_id: Uuid::now_v7(),
            name: "Kettle".into(),
            unit_price_cents: 2599,
            quantity,
        }],
        total_cents: 2599 * i64::from(quantity),
        currency: "EUR".into(),
    })
}

async fn publish(mail: &TestMail, event: Event) {
    testkit::publish_event(&mail.namespace, &Envelope::new("orders", event)).await;
}

#[tokio::test]
async fn orders_get_a_confirmation_and_a_shipping_notice() {
    let mail = TestMail::spawn().await;
    let users = mail.register(1).await;
    let (user_id, email) = users[0].clone();
    mail.sink
        .wait_for(std::slice::from_ref(&email), 1, 10)
        .await;
    let order_id = Uuid::now_v7();
    publish(&mail, order_created(order_id, user_id, 2)).await;
    for (from, to) in [
        ("created", "paid"),
        ("paid", "shipped"),
        ("shipped", "delivered"),
    ] {
        publish(
            &mail,
            Event::OrderStatusChanged(OrderStatusChanged {
                order_id,
                user_id,
                from: from.into(),
                to: to.into(),
                version: 2,
            }),
        )
        .await;
    }
    let received = mail
        .sink
        .wait_for(std::slice::from_ref(&email), 3, 20)
        .await;
    let subjects: Vec<&str> = received.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects.len(),
        3,
        "welcome, confirmation, shipped: {subjects:?}"
    );
    assert!(subjects[1].starts_with("Your order"));
    assert!(subjects[2].ends_with("is on its way"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        mail.sink.to(std::slice::from_ref(&email)).len(),
        3,
        "paid and delivered send nothing"
    );
}

#[tokio::test]
async fn a_confirmation_that_overtakes_its_users_registration_goes_out_when_the_address_arrives() {
    let mail = TestMail::spawn().await;
    let user_id = Uuid::now_v7();
    let email = format!("{}@example.com", user_id.simple());
    publish(&mail, order_created(Uuid::now_v7(), user_id, 1)).await;
    for _ in 0..100 {
        if mail.db.count("notifications").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        mail.db
            .count("notifications WHERE status = 'pending' AND recipient IS NULL")
            .await,
        1,
        "kept, waiting for the address"
    );

    publish(
        &mail,
        Event::UserRegistered(UserProfile {
            user_id,
            email: email.clone(),
            name: "Late Comer".into(),
            role: "customer".into(),
        }),
    )
    .await;

    let received = mail
        .sink
        .wait_for(std::slice::from_ref(&email), 2, 20)
        .await;
    let subjects: Vec<&str> = received.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects.iter().any(|s| s.starts_with("Your order")),
        "{subjects:?}"
    );
    // The sink has the mail a moment before the sender records it as sent.
    let mut sent = 0;
    for _ in 0..100 {
        sent = mail.db.count("notifications WHERE status = 'sent'").await;
        if sent == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 2);
}

#[tokio::test]
async fn one_customers_burst_does_not_hold_back_anothers_mail_and_keeps_its_own_order() {
    let mail = TestMail::spawn().await;
    let busy = mail.register(1).await;
    let (busy_id, busy_email) = busy[0].clone();
    mail.sink
        .wait_for(std::slice::from_ref(&busy_email), 1, 10)
        .await;
    for _ in 0..10 {
        publish(&mail, order_created(Uuid::now_v7(), busy_id, 1)).await;
    }
    for _ in 0..100 {
        if mail
            .db
            .count("notifications WHERE kind = 'order_confirmation'")
            .await
            == 10
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let newcomer = mail.register(1).await;
    let (newcomer_id, newcomer_email) = newcomer[0].clone();
    mail.sink
        .wait_for(std::slice::from_ref(&newcomer_email), 1, 20)
        .await;
    let welcome = format!("notifications WHERE user_id = '{newcomer_id}' AND status = 'sent'");
    mail.db.eventually(&welcome, 1).await;
    // Counted from when the welcome was recorded, so the time its event
    // took to arrive does not count against the queue.
    let ahead = mail
        .db
        .count(&format!(
            "notifications b, notifications w
              WHERE w.user_id = '{newcomer_id}' AND b.user_id = '{busy_id}'
                AND b.kind = 'order_confirmation'
                AND b.sent_at > w.created_at AND b.sent_at < w.sent_at"
        ))
        .await;
    assert!(
        ahead <= 1,
        "{ahead} queued confirmations went between the newcomer's welcome being recorded and sent"
    );
    let queued_behind = mail
        .db
        .count(&format!(
            "notifications b, notifications w
              WHERE w.user_id = '{newcomer_id}' AND b.user_id = '{busy_id}'
                AND b.kind = 'order_confirmation'
                AND (b.sent_at IS NULL OR b.sent_at > w.sent_at)"
        ))
        .await;
    assert!(
        queued_behind >= 2,
        "the welcome went out after all but {queued_behind} of the queued confirmations"
    );

    mail.sink
        .wait_for(std::slice::from_ref(&busy_email), 11, 40)
        .await;
    let mut reordered = -1;
    for _ in 0..100 {
        if mail.db.count("notifications WHERE status = 'sent'").await == 12 {
            reordered = mail
                .db
                .count(
                    "notifications a JOIN notifications b
                       ON a.user_id = b.user_id AND a.created_at < b.created_at
                    WHERE a.sent_at > b.sent_at",
                )
                .await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        reordered, 0,
        "each user's mail left in the order of its events"
    );
}
