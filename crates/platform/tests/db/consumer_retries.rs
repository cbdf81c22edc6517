use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use events::{Envelope, Event, UserDeleted};
use futures::future::BoxFuture;
use platform::broker::Broker;
use platform::consumer::{Handler, Subscription};
use secrecy::SecretString;
use uuid::Uuid;

use crate::running_consumer::{AMQP, RunningConsumer};

/// Fails each event its first `fails[id]` times; records when each attempt came.
#[derive(Default)]
struct Flaky {
    fails: Mutex<HashMap<Uuid, u32>>,
    attempts: Mutex<HashMap<Uuid, Vec<Instant>>>,
}

impl Flaky {
    fn attempts(&self, id: Uuid) -> Vec<Instant> {
        self.attempts
            .lock()
            .expect("lock")
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }
}

impl Handler for Flaky {
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut attempts = self.attempts.lock().expect("lock");
            let seen = attempts.entry(envelope.id).or_default();
            seen.push(Instant::now());
            let failing = *self
                .fails
                .lock()
                .expect("lock")
                .get(&envelope.id)
                .unwrap_or(&0);
            if seen.len() as u32 <= failing {
                anyhow::bail!("failing on purpose");
            }
            Ok(())
        })
    }
}

/// The `Flaky` consumer; `Deref` reaches its namespace and handler.
struct Harness(RunningConsumer<Flaky>);

impl std::ops::Deref for Harness {
    type Target = RunningConsumer<Flaky>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Harness {
    async fn start(first_retry: Duration, max_attempts: u32) -> Self {
        let subscription = Subscription {
            name: "retries",
            events: &["user.deleted"],
            single_active: false,
            prefetch: 1,
            max_attempts,
            first_retry,
        };
        Self(RunningConsumer::start("retries", subscription, Flaky::default()).await)
    }

    /// Publishes an event that fails its first `fails` attempts; returns its id.
    async fn publish(&self, fails: u32) -> Uuid {
        let envelope = Envelope::new(
            "tests",
            Event::UserDeleted(UserDeleted {
                user_id: Uuid::now_v7(),
            }),
        );
        self.handler
            .fails
            .lock()
            .expect("lock")
            .insert(envelope.id, fails);
        testkit::publish_event(&self.namespace, &envelope).await;
        envelope.id
    }

    async fn attempts_reach(&self, id: Uuid, count: usize, within: Duration) -> Vec<Instant> {
        let started = Instant::now();
        loop {
            let attempts = self.handler.attempts(id);
            if attempts.len() >= count || started.elapsed() > within {
                return attempts;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_short_retry_does_not_wait_behind_a_long_one() {
    let harness = Harness::start(Duration::from_millis(500), 5).await;
    // Three failures put the slow event in the 2 s retry.
    let slow = harness.publish(10).await;
    let attempts = harness
        .attempts_reach(slow, 3, Duration::from_secs(10))
        .await;
    assert_eq!(attempts.len(), 3, "the slow event failed three times");
    let slow_waiting_since = attempts[2];

    // One failure puts this one in the 500 ms retry, behind the slow one.
    let quick = harness.publish(1).await;
    let quick_attempts = harness
        .attempts_reach(quick, 2, Duration::from_secs(10))
        .await;
    assert_eq!(quick_attempts.len(), 2, "the quick event was retried");
    let slow_back = harness
        .attempts_reach(slow, 4, Duration::from_secs(10))
        .await;
    assert!(
        quick_attempts[1] < slow_back[3],
        "the quick retry came back {:?} after the slow one went to wait, after the slow one's return at {:?}",
        quick_attempts[1] - slow_waiting_since,
        slow_back[3] - slow_waiting_since
    );
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_then_replayed() {
    let harness = Harness::start(Duration::from_millis(100), 3).await;
    let id = harness.publish(3).await;
    let attempts = harness.attempts_reach(id, 3, Duration::from_secs(10)).await;
    assert_eq!(attempts.len(), 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(harness.handler.attempts(id).len(), 3, "then it stopped");

    let broker = Broker::new(SecretString::from(AMQP), &harness.namespace);
    let replayed = platform::consumer::replay_dead_letters(&broker)
        .await
        .expect("replay");
    assert_eq!(replayed, 1);
    let attempts = harness.attempts_reach(id, 4, Duration::from_secs(10)).await;
    assert_eq!(attempts.len(), 4, "the replayed event was handled");
}
