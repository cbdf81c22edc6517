//! `docs/asyncapi.yaml` describes every event type, with the payloads the
//! code actually produces.

use events::{
    Envelope, Event, OrderCreated, OrderLine, OrderStatusChanged, ProductUpdated, ReviewChanged,
    UserDeleted, UserProfile,
};
use serde_json::Value;
use uuid::Uuid;

/// One of every event; the match makes adding a variant without a sample fail to compile.
fn samples() -> Vec<Event> {
    let profile = UserProfile {
        user_id: Uuid::nil(),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        role: "customer".into(),
    };
    let all = vec![
        Event::UserRegistered(profile.clone()),
        Event::UserUpdated(profile),
        Event::UserDeleted(UserDeleted {
            user_id: Uuid::nil(),
        }),
        Event::ProductUpdated(ProductUpdated {
            product_id: Uuid::nil(),
            sku: "A-1".into(),
            name: "Kettle".into(),
            price_cents: 2599,
            currency: "EUR".into(),
            stock: 3,
            version: 2,
            deleted: false,
        }),
        Event::OrderCreated(OrderCreated {
            order_id: Uuid::nil(),
            user_id: Uuid::nil(),
            items: vec![OrderLine {
                product_id: Uuid::nil(),
                name: "Kettle".into(),
                unit_price_cents: 2599,
                quantity: 1,
            }],
            total_cents: 2599,
            currency: "EUR".into(),
        }),
        Event::OrderStatusChanged(OrderStatusChanged {
            order_id: Uuid::nil(),
            user_id: Uuid::nil(),
            from: "paid".into(),
            to: "shipped".into(),
            version: 3,
        }),
    ];
    let review = ReviewChanged {
        review_id: Uuid::nil(),
        product_id: Uuid::nil(),
        user_id: Uuid::nil(),
        rating: 4,
        version: 1,
    };
    let mut all = all;
    all.extend([
        Event::ReviewCreated(review.clone()),
        Event::ReviewUpdated(review.clone()),
        Event::ReviewDeleted(review),
    ]);
    for event in &all {
        match event {
            Event::UserRegistered(_)
            | Event::UserUpdated(_)
            | Event::UserDeleted(_)
            | Event::ProductUpdated(_)
            | Event::OrderCreated(_)
            | Event::OrderStatusChanged(_)
            | Event::ReviewCreated(_)
            | Event::ReviewUpdated(_)
            | Event::ReviewDeleted(_) => {}
        }
    }
    all
}

fn document() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/asyncapi.yaml"
    ))
    .expect("docs/asyncapi.yaml exists");
    serde_yaml::from_str(&text).expect("docs/asyncapi.yaml is YAML")
}

fn resolve<'a>(doc: &'a Value, reference: &Value) -> &'a Value {
    let path = reference["$ref"].as_str().expect("a $ref");
    path.trim_start_matches("#/")
        .split('/')
        .fold(doc, |node, key| &node[key])
}

/// JSON types as the schema names them.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

fn assert_matches(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = if schema.get("$ref").is_some() {
        resolve(doc, schema)
    } else {
        schema
    };
    assert_eq!(schema["type"].as_str(), Some(type_of(value)), "{at}: type");
    match value {
        // The envelope's `data` is checked against the message's own schema.
        Value::Object(_) if schema.get("properties").is_none() => {}
        Value::Object(fields) => {
            let mut documented: Vec<&str> = schema["properties"]
                .as_object()
                .expect("properties")
                .keys()
                .map(String::as_str)
                .collect();
            let mut produced: Vec<&str> = fields.keys().map(String::as_str).collect();
            documented.sort_unstable();
            produced.sort_unstable();
            assert_eq!(documented, produced, "{at}: fields");
            let mut required: Vec<&str> = schema["required"]
                .as_array()
                .expect("required")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            required.sort_unstable();
            assert_eq!(required, produced, "{at}: every field is always there");
            for (name, field) in fields {
                assert_matches(
                    doc,
                    &schema["properties"][name],
                    field,
                    &format!("{at}.{name}"),
                );
            }
        }
        Value::Array(items) => {
            for item in items {
                assert_matches(doc, &schema["items"], item, &format!("{at}[]"));
            }
        }
        _ => {}
    }
}

#[test]
fn every_event_type_has_a_channel_and_a_message() {
    let doc = document();
    let addresses: Vec<&str> = doc["channels"]
        .as_object()
        .expect("channels")
        .values()
        .filter_map(|channel| channel["address"].as_str())
        .collect();
    for event in samples() {
        let kind = event.event_type();
        assert!(addresses.contains(&kind), "{kind} has no channel");
        assert_eq!(
            doc["components"]["messages"][kind]["name"], kind,
            "{kind} has no message"
        );
    }
    assert_eq!(
        addresses.len(),
        samples().len(),
        "no channel for an event that does not exist"
    );
}

#[test]
fn every_payload_matches_its_schema() {
    let doc = document();
    for event in samples() {
        let kind = event.event_type();
        let envelope = serde_json::to_value(Envelope::new("test", event)).expect("json");
        let message = &doc["components"]["messages"][kind];
        assert_matches(&doc, &message["payload"], &envelope, kind);
        assert_matches(
            &doc,
            &message["x-data"],
            &envelope["data"],
            &format!("{kind}.data"),
        );
    }
}
