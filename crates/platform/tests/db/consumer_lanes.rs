use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use events::{Envelope, Event, UserProfile};
use futures::future::BoxFuture;
use platform::consumer::{Handler, Subscription};
use uuid::Uuid;

use crate::running_consumer::RunningConsumer;

const SUBJECTS: usize = 12;
const EVENTS_PER_SUBJECT: usize = 4;

/// Takes its time over each event and records, per subject, the sequence
/// numbers in the order handled and whether two of one subject overlapped.
#[derive(Default)]
struct Slow {
    handled: Mutex<HashMap<Uuid, Vec<u32>>>,
    busy_subjects: Mutex<HashMap<Uuid, usize>>,
    overlapped_within_a_subject: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl Handler for Slow {
    fn handle<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let Event::UserUpdated(profile) = &envelope.event else {
                anyhow::bail!("unexpected event");
            };
            let subject = profile.user_id;
            {
                let mut busy = self.busy_subjects.lock().expect("lock");
                let count = busy.entry(subject).or_default();
                if *count > 0 {
                    self.overlapped_within_a_subject
                        .fetch_add(1, Ordering::SeqCst);
                }
                *count += 1;
            }
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            *self
                .busy_subjects
                .lock()
                .expect("lock")
                .get_mut(&subject)
                .expect("counted above") -= 1;
            self.handled
                .lock()
                .expect("lock")
                .entry(subject)
                .or_default()
                .push(profile.name.parse()?);
            Ok(())
        })
    }
}

/// The `Slow` consumer; `Deref` reaches its namespace and handler.
struct Harness(RunningConsumer<Slow>);

impl std::ops::Deref for Harness {
    type Target = RunningConsumer<Slow>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Harness {
    async fn start(prefetch: u16) -> Self {
        let subscription = Subscription {
            name: "lanes",
            events: &["user.updated"],
            single_active: false,
            prefetch,
            max_attempts: 3,
            first_retry: Duration::from_millis(100),
        };
        Self(RunningConsumer::start("lanes", subscription, Slow::default()).await)
    }

    /// Publishes every subject's events interleaved, numbered per subject.
    async fn publish_interleaved(&self) -> Vec<Uuid> {
        let subjects: Vec<Uuid> = (0..SUBJECTS).map(|_| Uuid::new_v4()).collect();
        let mut envelopes = Vec::new();
        for seq in 0..EVENTS_PER_SUBJECT {
            for subject in &subjects {
                envelopes.push(Envelope::new(
                    "tests",
                    Event::UserUpdated(UserProfile {
                        user_id: *subject,
                        email: "lanes@example.com".into(),
                        name: seq.to_string(),
                        role: "customer".into(),
                    }),
                ));
            }
        }
        testkit::publish_events(&self.namespace, &envelopes).await;
        subjects
    }

    async fn all_handled(&self) -> HashMap<Uuid, Vec<u32>> {
        let started = Instant::now();
        loop {
            let handled = self.handler.handled.lock().expect("lock").clone();
            let count: usize = handled.values().map(Vec::len).sum();
            if count >= SUBJECTS * EVENTS_PER_SUBJECT || started.elapsed() > Duration::from_secs(20)
            {
                return handled;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn events_about_one_subject_are_handled_one_at_a_time_in_published_order() {
    let harness = Harness::start(8).await;
    let subjects = harness.publish_interleaved().await;
    let handled = harness.all_handled().await;
    let in_order: Vec<u32> = (0..EVENTS_PER_SUBJECT as u32).collect();
    for subject in subjects {
        assert_eq!(handled.get(&subject), Some(&in_order), "subject {subject}");
    }
    assert_eq!(
        harness
            .handler
            .overlapped_within_a_subject
            .load(Ordering::SeqCst),
        0,
        "two events about one subject were handled at once"
    );
}

#[tokio::test]
async fn events_about_different_subjects_are_handled_at_once() {
    let harness = Harness::start(8).await;
    harness.publish_interleaved().await;
    harness.all_handled().await;
    let most = harness.handler.most_in_flight.load(Ordering::SeqCst);
    assert!(most >= 2, "at most {most} event was handled at a time");
    assert!(most <= 8, "{most} events at once, more than the prefetch");
}

#[tokio::test]
async fn a_prefetch_of_one_handles_one_event_at_a_time() {
    let harness = Harness::start(1).await;
    harness.publish_interleaved().await;
    harness.all_handled().await;
    assert_eq!(harness.handler.most_in_flight.load(Ordering::SeqCst), 1);
}
