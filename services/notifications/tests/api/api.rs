use platform::auth::Role;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::TestMail;

#[tokio::test]
async fn customers_see_their_own_messages_and_staff_all() {
    let mail = TestMail::spawn().await;
    let users = mail.register(2).await;
    let addresses: Vec<String> = users.iter().map(|(_, e)| e.clone()).collect();
    mail.sink.wait_for(&addresses, 2, 20).await;
    // The sink has a mail a moment before the sender records it as sent.
    mail.db
        .eventually("notifications WHERE status = 'sent'", 2)
        .await;
    let (first, _) = users[0];

    let own: Value = mail
        .list("", &mail.token(first, Role::Customer))
        .await
        .json()
        .await
        .expect("json");
    let own = own["data"].as_array().expect("data").clone();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["user_id"], first.to_string());
    assert_eq!(own[0]["kind"], "welcome");
    assert_eq!(own[0]["status"], "sent");
    assert!(own[0]["sent_at"].is_string() && own[0]["event_id"].is_string());

    let others: Value = mail
        .list(
            &format!("user_id={}", users[1].0),
            &mail.token(first, Role::Customer),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(others["data"].as_array().expect("data").len(), 0);

    let all: Value = mail
        .list(
            "kind=welcome&status=sent&limit=1",
            &mail.token(Uuid::now_v7(), Role::Support),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(all["data"].as_array().expect("data").len(), 1);
    let cursor = all["next_cursor"].as_str().expect("a second page");
    let next: Value = mail
        .list(
            &format!("kind=welcome&status=sent&limit=1&cursor={cursor}"),
            &mail.admin,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(next["data"].as_array().expect("data").len(), 1);
    assert_ne!(
        next["data"][0]["notification_id"],
        all["data"][0]["notification_id"]
    );
}

#[tokio::test]
async fn bad_filters_and_no_token_are_4xx() {
    let mail = TestMail::spawn().await;
    for query in [
        "kind=postcard",
        "status=lost",
        "limit=0",
        "user_id=nope",
        "colour=red",
    ] {
        assert_eq!(mail.list(query, &mail.admin).await.status(), 400, "{query}");
    }
    let response = mail
        .http
        .get(format!("{}/notifications", mail.notifications[0]))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
}
