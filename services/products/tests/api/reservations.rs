use std::time::Duration;

use events::{Envelope, Event, ProductUpdated};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, assert_problem, id_of, product};

async fn stocked(app: &TestApp, stocks: &[i64]) -> Vec<String> {
    let items = stocks
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut p = product(&format!("Item {i}"));
            p["stock"] = json!(s);
            p
        })
        .collect();
    app.create(items).await.iter().map(id_of).collect()
}

#[tokio::test]
async fn a_reservation_holds_stock_and_answers_names_and_prices() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10, 5]).await;
    let id = Uuid::now_v7();
    let response = app
        .reserve(
            id,
            json!([
                {"product_id": ids[0], "quantity": 3},
                {"product_id": ids[1], "quantity": 5},
                {"product_id": ids[0], "quantity": 1}
            ]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let reservation: Value = response.json().await.expect("json");
    assert_eq!(reservation["status"], "held");
    let line = reservation["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|l| l["product_id"] == ids[0].as_str())
        .expect("line");
    assert_eq!(line["quantity"], 4);
    assert_eq!(line["name"], "Item 0");
    assert_eq!(line["unit_price_cents"], 1999);
    assert_eq!(app.stock(&ids[0]).await, 6);
    assert_eq!(app.stock(&ids[1]).await, 0);
}

#[tokio::test]
async fn one_short_line_holds_nothing_and_is_named() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10, 2]).await;
    let response = app
        .reserve(
            Uuid::now_v7(),
            json!([
                {"product_id": ids[0], "quantity": 3},
                {"product_id": ids[1], "quantity": 3}
            ]),
        )
        .await;
    let problem = assert_problem(response, 409).await;
    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(app.stock(&ids[0]).await, 10);
    assert_eq!(app.stock(&ids[1]).await, 2);
    assert_eq!(app.db.scalar("SELECT count(*) FROM reservations").await, 0);
}

#[tokio::test]
async fn an_unknown_product_holds_nothing() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10]).await;
    let response = app
        .reserve(
            Uuid::now_v7(),
            json!([
                {"product_id": ids[0], "quantity": 1},
                {"product_id": Uuid::now_v7(), "quantity": 1}
            ]),
        )
        .await;
    assert_problem(response, 422).await;
    assert_eq!(app.stock(&ids[0]).await, 10);
}

#[tokio::test]
async fn reserving_again_with_the_same_id_holds_nothing_more() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10]).await;
    let id = Uuid::now_v7();
    let body = json!([{"product_id": ids[0], "quantity": 4}]);
    let first: Value = app
        .reserve(id, body.clone())
        .await
        .json()
        .await
        .expect("json");
    let retry = app.reserve(id, body).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.json::<Value>().await.expect("json"), first);
    assert_eq!(app.stock(&ids[0]).await, 6);
}

#[tokio::test]
async fn holds_racing_with_one_id_take_the_stock_once_and_answer_alike() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10]).await;
    let id = Uuid::now_v7();
    let body = json!([{"product_id": ids[0], "quantity": 4}]);
    let answers = futures::future::join_all((0..8).map(|_| app.reserve(id, body.clone()))).await;
    let mut held = Vec::new();
    for answer in answers {
        assert!(
            matches!(answer.status().as_u16(), 200 | 201),
            "{}",
            answer.status()
        );
        held.push(answer.json::<Value>().await.expect("json"));
    }
    assert!(held.iter().all(|h| *h == held[0]), "{held:?}");
    assert_eq!(app.stock(&ids[0]).await, 6);
    assert_eq!(app.db.count("reservation_items").await, 1);
}

#[tokio::test]
async fn a_one_product_hold_announces_the_product_as_it_is_after_the_move() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10]).await;
    let held = app
        .reserve(
            Uuid::now_v7(),
            json!([{"product_id": ids[0], "quantity": 3}]),
        )
        .await;
    assert_eq!(held.status(), 201);
    let payload = app
        .db
        .text(&format!(
            "SELECT payload::text FROM outbox WHERE payload->'data'->>'product_id' = '{}'
              ORDER BY (payload->'data'->>'version')::int DESC LIMIT 1",
            ids[0]
        ))
        .await;
    let announced: Envelope = serde_json::from_str(&payload).expect("an event envelope");
    let product = app.get_json(&format!("/products/{}", ids[0])).await;
    assert_eq!(announced.source, "products");
    assert_eq!(
        announced.event,
        Event::ProductUpdated(ProductUpdated {
            product_id: ids[0].parse().expect("uuid"),
            sku: product["sku"].as_str().expect("sku").to_owned(),
            name: product["name"].as_str().expect("name").to_owned(),
            price_cents: product["price_cents"].as_i64().expect("price"),
            currency: product["currency"].as_str().expect("currency").to_owned(),
            stock: 7,
            version: product["version"].as_i64().expect("version") as i32,
            deleted: false,
        })
    );
}

#[tokio::test]
async fn releasing_returns_the_stock_once() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10]).await;
    let id = Uuid::now_v7();
    app.reserve(id, json!([{"product_id": ids[0], "quantity": 7}]))
        .await;
    for _ in 0..2 {
        let response = app
            .internal(&format!("/internal/reservations/{id}/release"), &json!({}))
            .await;
        assert_eq!(response.status(), 204);
    }
    assert_eq!(app.stock(&ids[0]).await, 10);
}

#[tokio::test]
async fn a_confirmed_reservation_keeps_its_stock_until_released() {
    let app = TestApp::spawn_with(Options {
        reservation_ttl_secs: Some(1),
        ..Options::default()
    })
    .await;
    let ids = stocked(&app, &[10]).await;
    let id = Uuid::now_v7();
    app.reserve(id, json!([{"product_id": ids[0], "quantity": 2}]))
        .await;
    assert_eq!(
        app.internal(&format!("/internal/reservations/{id}/confirm"), &json!({}))
            .await
            .status(),
        204
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.stock(&ids[0]).await, 8, "confirmed holds do not lapse");
    app.internal(&format!("/internal/reservations/{id}/release"), &json!({}))
        .await;
    assert_eq!(
        app.stock(&ids[0]).await,
        10,
        "cancelling an order releases it"
    );
}

#[tokio::test]
async fn an_unconfirmed_reservation_lapses_and_its_stock_returns() {
    let app = TestApp::spawn_with(Options {
        reservation_ttl_secs: Some(1),
        ..Options::default()
    })
    .await;
    let ids = stocked(&app, &[10]).await;
    let id = Uuid::now_v7();
    app.reserve(id, json!([{"product_id": ids[0], "quantity": 6}]))
        .await;
    assert_eq!(app.stock(&ids[0]).await, 4);
    let mut returned = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if app.stock(&ids[0]).await == 10 {
            returned = true;
            break;
        }
    }
    assert!(returned, "the lapsed hold was released");
    let confirm = app
        .internal(&format!("/internal/reservations/{id}/confirm"), &json!({}))
        .await;
    assert_problem(confirm, 409).await;
}

#[tokio::test]
async fn a_lapsed_reservation_stays_held_while_the_orders_service_cannot_be_asked() {
    let app = TestApp::spawn_with(Options {
        reservation_ttl_secs: Some(1),
        orders_away: true,
        ..Options::default()
    })
    .await;
    let ids = stocked(&app, &[10]).await;
    let id = Uuid::now_v7();
    app.reserve(id, json!([{"product_id": ids[0], "quantity": 6}]))
        .await;
    // Past the hold's lifetime and two sweeps (one a second).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(app.stock(&ids[0]).await, 4, "an order may still use it");
    let confirm = app
        .internal(&format!("/internal/reservations/{id}/confirm"), &json!({}))
        .await;
    assert_eq!(confirm.status(), 204, "its late confirmation still holds");
}

#[tokio::test]
async fn concurrent_reservations_never_oversell() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10]).await;
    let attempts = (0..60).map(|_| {
        app.reserve(
            Uuid::now_v7(),
            json!([{"product_id": ids[0], "quantity": 1}]),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        50,
        "{statuses:?}"
    );
    assert_eq!(app.stock(&ids[0]).await, 0);
}

#[tokio::test]
async fn crossing_multi_product_reservations_neither_deadlock_nor_lose_stock() {
    let app = TestApp::spawn_with(Options {
        reservation_ttl_secs: Some(1),
        ..Options::default()
    })
    .await;
    let ids = stocked(&app, &[50, 50, 50]).await;
    let mut work = Vec::new();
    for i in 0..40 {
        // Opposite orders of the same products: locks still taken in id order.
        let lines = if i % 2 == 0 {
            json!([{"product_id": ids[0], "quantity": 1}, {"product_id": ids[1], "quantity": 2}, {"product_id": ids[2], "quantity": 1}])
        } else {
            json!([{"product_id": ids[2], "quantity": 2}, {"product_id": ids[1], "quantity": 1}, {"product_id": ids[0], "quantity": 1}])
        };
        let id = Uuid::now_v7();
        let app = &app;
        work.push(async move {
            let reserved = app.reserve(id, lines).await.status().as_u16();
            match i % 4 {
                0 if reserved == 201 => {
                    app.internal(&format!("/internal/reservations/{id}/confirm"), &json!({}))
                        .await;
                }
                1 if reserved == 201 => {
                    app.internal(&format!("/internal/reservations/{id}/release"), &json!({}))
                        .await;
                }
                _ => {} // left to lapse
            }
            reserved
        });
    }
    let statuses = futures::future::join_all(work).await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    // Stock plus units held by live reservations equals what was put in.
    for _ in 0..2 {
        let invariant = app.db
            .scalar(
                "SELECT count(*) FROM products p WHERE p.stock + coalesce((
                     SELECT sum(i.quantity) FROM reservation_items i JOIN reservations r USING (reservation_id)
                     WHERE i.product_id = p.product_id AND r.status <> 'released'), 0) <> 50",
            )
            .await;
        assert_eq!(invariant, 0, "stock + held = 50 for every product");
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM reservations WHERE status = 'held'")
            .await,
        0,
        "every hold confirmed, released or lapsed"
    );
}

#[tokio::test]
async fn internal_routes_need_the_internal_token() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10]).await;
    let body =
        json!({"reservation_id": Uuid::now_v7(), "items": [{"product_id": ids[0], "quantity": 1}]});
    let response = app
        .http
        .post(app.url("/internal/reservations"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_problem(response, 401).await;
    let response = app
        .http
        .post(app.url("/internal/reservations"))
        .header(platform::internal::HEADER, "wrong")
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_problem(response, 401).await;
    assert_eq!(app.stock(&ids[0]).await, 10);
}

#[tokio::test]
async fn bad_reservation_bodies_are_4xx() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10]).await;
    assert_problem(app.reserve(Uuid::now_v7(), json!([])).await, 422).await;
    assert_problem(
        app.reserve(
            Uuid::now_v7(),
            json!([{"product_id": ids[0], "quantity": 0}]),
        )
        .await,
        422,
    )
    .await;
    assert_problem(
        app.reserve(
            Uuid::now_v7(),
            json!([{"product_id": ids[0], "quantity": "two"}]),
        )
        .await,
        422,
    )
    .await;
}

#[tokio::test]
async fn part_of_a_reservation_is_released_once() {
    let app = TestApp::spawn().await;
    let ids = stocked(&app, &[10, 10]).await;
    let id = Uuid::now_v7();
    app.reserve(
        id,
        json!([{"product_id": ids[0], "quantity": 4}, {"product_id": ids[1], "quantity": 2}]),
    )
    .await;
    let part = json!({"release_id": Uuid::now_v7(), "items": [{"product_id": ids[0], "quantity": 3}, {"product_id": ids[1], "quantity": 2}]});
    for _ in 0..2 {
        let response = app
            .internal(&format!("/internal/reservations/{id}/release"), &part)
            .await;
        assert_eq!(response.status(), 204);
    }
    assert_eq!(app.stock(&ids[0]).await, 9);
    assert_eq!(app.stock(&ids[1]).await, 10);
    let too_much =
        json!({"release_id": Uuid::now_v7(), "items": [{"product_id": ids[0], "quantity": 2}]});
    assert_problem(
        app.internal(&format!("/internal/reservations/{id}/release"), &too_much)
            .await,
        409,
    )
    .await;
    let rest = app
        .http
        .post(app.url(&format!("/internal/reservations/{id}/release")))
        .header(platform::internal::HEADER, crate::helpers::INTERNAL)
        .send()
        .await
        .expect("sent");
    assert_eq!(rest.status(), 204);
    assert_eq!(
        app.stock(&ids[0]).await,
        10,
        "the rest of the reservation came back"
    );
}
