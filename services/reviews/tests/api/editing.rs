//! Editing and deleting: only the author edits, only the text, against the
//! version they read; the author or an admin deletes.

use futures::future::join_all;
use platform::auth::Role;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, id_of};

#[tokio::test]
async fn the_author_edits_the_text_against_the_version_read() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let review = app.review(&token, app.product().await, 4).await;

    let response = app
        .edit(
            &token,
            &id_of(&review),
            Some("\"1\""),
            &json!({"title": "Even better"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let edited: serde_json::Value = response.json().await.expect("json");
    assert_eq!(edited["title"], "Even better");
    assert_eq!(edited["body"], review["body"]);
    assert_eq!(edited["rating"], 4);
    assert_eq!(edited["version"], 2);

    let by_body = app
        .edit(
            &token,
            &id_of(&review),
            None,
            &json!({"body": "Still fine.", "version": 2}),
        )
        .await;
    assert_eq!(by_body.status(), 200);
}

#[tokio::test]
async fn an_edit_of_a_stale_version_is_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let review = app.review(&token, app.product().await, 4).await;
    let id = id_of(&review);
    assert_eq!(
        app.edit(&token, &id, Some("\"1\""), &json!({"title": "One"}))
            .await
            .status(),
        200
    );

    assert_problem(
        app.edit(&token, &id, Some("\"1\""), &json!({"title": "Two"}))
            .await,
        412,
    )
    .await;
    assert_eq!(app.read(&format!("/reviews/{id}")).await["title"], "One");
}

#[tokio::test]
async fn an_edit_naming_no_version_is_428() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let review = app.review(&token, app.product().await, 4).await;
    let response = app
        .edit(&token, &id_of(&review), None, &json!({"title": "t"}))
        .await;
    assert_problem(response, 428).await;
}

#[tokio::test]
async fn the_rating_and_the_product_cannot_be_edited() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let review = app.review(&token, app.product().await, 4).await;
    for body in [
        json!({"rating": 5, "version": 1}),
        json!({"title": "t", "product_id": review["product_id"], "version": 1}),
    ] {
        let problem =
            assert_problem(app.edit(&token, &id_of(&review), None, &body).await, 422).await;
        assert!(problem["errors"][0]["field"] != "title", "{problem}");
    }
    assert_eq!(
        app.read(&format!("/reviews/{}", id_of(&review))).await["version"],
        1
    );
}

#[tokio::test]
async fn nobody_but_the_author_edits_admins_included_whatever_the_body() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let review = app.review(&token, app.product().await, 4).await;
    let (_, other) = app.customer("Eve").await;
    for caller in [&other, &app.admin] {
        for body in [
            json!({"title": "mine now", "version": 1}),
            json!({"rating": 9}),
        ] {
            let response = app.edit(caller, &id_of(&review), None, &body).await;
            assert_problem(response, 403).await;
        }
    }
}

#[tokio::test]
async fn two_edits_of_one_version_at_once_leave_one_winner() {
    let app = TestApp::spawn().await;
    let (_, token) = app.customer("Ada").await;
    let review = app.review(&token, app.product().await, 4).await;
    let id = id_of(&review);
    let bodies: Vec<_> = (0..6)
        .map(|i| json!({"title": format!("edit {i}")}))
        .collect();

    let statuses: Vec<u16> = join_all(
        bodies
            .iter()
            .map(|b| app.edit(&token, &id, Some("\"1\""), b)),
    )
    .await
    .iter()
    .map(|r| r.status().as_u16())
    .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 412),
        "{statuses:?}"
    );
    assert_eq!(app.read(&format!("/reviews/{id}")).await["version"], 2);
}

#[tokio::test]
async fn the_author_and_an_admin_delete_and_nobody_else_does() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.customer("Ada").await;
    let (_, eve) = app.customer("Eve").await;
    let support = app.issuer.token(uuid::Uuid::now_v7(), Role::Support);
    let product_id = app.product().await;
    let first = id_of(&app.review(&ada, product_id, 4).await);
    let second = id_of(&app.review(&eve, product_id, 2).await);

    for refused in [&eve, &support] {
        assert_problem(
            app.reviews
                .delete(&format!("/reviews/{first}"), refused)
                .await,
            403,
        )
        .await;
    }
    assert_eq!(
        app.reviews
            .delete(&format!("/reviews/{first}"), &ada)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.reviews
            .delete(&format!("/reviews/{second}"), &app.admin)
            .await
            .status(),
        204
    );
    assert_problem(
        app.reviews.delete(&format!("/reviews/{first}"), &ada).await,
        404,
    )
    .await;
    assert_eq!(app.db.count("reviews").await, 0);
}
