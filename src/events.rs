//! Publishing Events, as kube's `Recorder` does, with a smaller memory.
//!
//! An Event repeated within six minutes (same type, reason, action,
//! reporting controller and regarding and related objects: kube's
//! `EventKey`, the note left out) is not a new Event: the first one's
//! `series` counts it (`events.k8s.io/v1`, as client-go's event recorder
//! does). To know what it published, kube's `Recorder` keeps each whole
//! Event (a few KiB with its references and note) for six minutes: after a
//! group edit's thousand `PrivilegesChanged` Events, megabytes held for
//! nothing but that (the largest live allocation of the scale run's heap
//! profile, docs/performance.md). [`Series`] keeps, per key, a 64-bit hash
//! of it, the Event's name, its count and when it was last seen: what a
//! repeat needs to patch its series.
//!
//! The controller publishes through one [`Series`]; the webhook's activity
//! Events are each new ([`create`]): a series would keep the first note and
//! lose who made the later changes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Client};

/// How long an Event is remembered to count its repeats (kube's
/// `CACHE_TTL`, client-go's series window).
pub const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// What was published in the last [`SERIES_TTL`], by the hash of each
/// Event's key.
#[derive(Debug, Default)]
pub struct Series {
    hasher: RandomState,
    seen: HashMap<u64, Seen>,
}

#[derive(Debug)]
struct Seen {
    name: Box<str>,
    count: i32,
    last: Timestamp,
}

/// What to send for one Event.
#[derive(Debug, PartialEq, Eq)]
pub enum Publish {
    /// A new Event, by this name.
    Create { name: String },
    /// A repeat: the series of the Event by this name, counted anew.
    Repeat { name: String, count: i32 },
}

impl Series {
    /// Whether `event` about `regarding`, published at `now`, is new or a
    /// repeat; forgets what is older than [`SERIES_TTL`] first. Call
    /// [`Series::published`] once it was sent.
    pub fn next(
        &mut self,
        reporter: &Reporter,
        event: &Event,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> (u64, Publish) {
        self.forget_before(now - SERIES_TTL);
        let key = self.key(reporter, event, regarding);
        let publish = match self.seen.get(&key) {
            Some(seen) => Publish::Repeat {
                name: seen.name.to_string(),
                count: seen.count.saturating_add(1),
            },
            None => Publish::Create {
                name: new_name(reporter, regarding, now),
            },
        };
        (key, publish)
    }

    /// Records that `publish` (for the key [`Series::next`] gave) was sent
    /// at `now`.
    pub fn published(&mut self, key: u64, publish: Publish, now: Timestamp) {
        let (name, count) = match publish {
            Publish::Create { name } => (name, 1),
            Publish::Repeat { name, count } => (name, count),
        };
        self.seen.insert(
            key,
            Seen {
                name: name.into_boxed_str(),
                count,
                last: now,
            },
        );
    }

    /// Forgets the Events last seen before `cutoff`, and gives the memory
    /// of a burst back once it has passed.
    fn forget_before(&mut self, cutoff: Timestamp) {
        self.seen.retain(|_, seen| seen.last > cutoff);
        if self.seen.capacity() > 64 && self.seen.capacity() > 4 * self.seen.len() {
            self.seen.shrink_to_fit();
        }
    }

    fn key(&self, reporter: &Reporter, event: &Event, regarding: &ObjectReference) -> u64 {
        // As kube's `Reference`: the object, not its version (a status
        // write between two repeats changes its resourceVersion).
        fn reference(r: &ObjectReference) -> impl Hash + '_ {
            (&r.api_version, &r.kind, &r.namespace, &r.name, &r.uid)
        }
        let kind = match event.type_ {
            EventType::Normal => 0u8,
            EventType::Warning => 1,
        };
        self.hasher.hash_one((
            kind,
            &event.action,
            &event.reason,
            &reporter.controller,
            &reporter.instance,
            reference(regarding),
            event.secondary.as_ref().map(reference),
        ))
    }
}

/// Publishes one Event: creates it, or patches the series of the Event it
/// repeats.
pub async fn publish(
    client: &Client,
    reporter: &Reporter,
    series: &mut Series,
    event: &Event,
    regarding: &ObjectReference,
) -> kube::Result<()> {
    let now = Timestamp::now();
    let (key, mut publish) = series.next(reporter, event, regarding, now);
    let events = events_about(client, regarding);
    if let Publish::Repeat { name, count } = &publish {
        let patch = serde_json::json!({
            "series": {"count": count, "lastObservedTime": MicroTime(now)},
        });
        match events
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            // The Event it repeats is gone (deleted, or expired by the
            // apiserver's event TTL): a new one starts the series again.
            Err(kube::Error::Api(e)) if e.code == 404 => {
                publish = Publish::Create {
                    name: new_name(reporter, regarding, now),
                };
            }
            result => {
                result?;
            }
        }
    }
    if let Publish::Create { name } = &publish {
        let new = new_event(reporter, event, regarding, name, now);
        events.create(&PostParams::default(), &new).await?;
    }
    series.published(key, publish, now);
    Ok(())
}

/// A new Event's name: the object's, and the time in nanoseconds (kube's).
fn new_name(reporter: &Reporter, regarding: &ObjectReference, now: Timestamp) -> String {
    format!(
        "{}.{:x}",
        regarding.name.as_deref().unwrap_or(&reporter.controller),
        now.as_nanosecond()
    )
}

/// Creates `event` about `regarding` as a new Event, never a repeat (no
/// [`Series`] to consult or keep).
pub async fn create(
    client: &Client,
    reporter: &Reporter,
    event: &Event,
    regarding: &ObjectReference,
) -> kube::Result<()> {
    let now = Timestamp::now();
    let name = new_name(reporter, regarding, now);
    let new = new_event(reporter, event, regarding, &name, now);
    events_about(client, regarding)
        .create(&PostParams::default(), &new)
        .await
        .map(drop)
}

/// The Events of the namespace of `regarding` (`default` for a cluster-scoped
/// object, as kube's `Recorder`).
fn events_about(client: &Client, regarding: &ObjectReference) -> Api<K8sEvent> {
    let namespace = regarding.namespace.as_deref().unwrap_or("default");
    Api::namespaced(client.clone(), namespace)
}

/// The `events.k8s.io/v1` Event kube's `Recorder` would create.
fn new_event(
    reporter: &Reporter,
    event: &Event,
    regarding: &ObjectReference,
    name: &str,
    now: Timestamp,
) -> K8sEvent {
    K8sEvent {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        action: Some(event.action.clone()),
        reason: Some(event.reason.clone()),
        note: event.note.clone(),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        related: event.secondary.clone(),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        type_: Some(
            match event.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..K8sEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> Reporter {
        Reporter {
            controller: "orgaccess".into(),
            instance: Some("pod-a".into()),
        }
    }

    fn member(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("orgaccess.dev/v1alpha1".into()),
            kind: Some("Member".into()),
            namespace: Some("acme".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    fn event(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        }
    }

    fn send(series: &mut Series, e: &Event, r: &ObjectReference, now: Timestamp) -> Publish {
        let (key, publish) = series.next(&reporter(), e, r, now);
        let answer = match &publish {
            Publish::Create { name } => Publish::Create { name: name.clone() },
            Publish::Repeat { name, count } => Publish::Repeat {
                name: name.clone(),
                count: *count,
            },
        };
        series.published(key, publish, now);
        answer
    }

    #[test]
    fn a_repeat_within_the_window_counts_in_the_first_events_series() {
        let mut series = Series::default();
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let ana = member("ana");
        let Publish::Create { name } =
            send(&mut series, &event("PrivilegesChanged", "a"), &ana, t0)
        else {
            panic!("the first Event is created");
        };
        assert!(name.starts_with("ana."), "{name}");
        // The note is not part of the key (as kube's and client-go's).
        let repeat = send(
            &mut series,
            &event("PrivilegesChanged", "b"),
            &ana,
            t0 + SignedDuration::from_mins(1),
        );
        assert_eq!(
            repeat,
            Publish::Repeat {
                name: name.clone(),
                count: 2
            }
        );
        let third = send(
            &mut series,
            &event("PrivilegesChanged", "c"),
            &ana,
            t0 + SignedDuration::from_mins(5),
        );
        assert_eq!(
            third,
            Publish::Repeat {
                name: name.clone(),
                count: 3
            }
        );
        // The same object at a later version is the same object.
        let mut written = ana.clone();
        written.resource_version = Some("42".into());
        let fourth = send(
            &mut series,
            &event("PrivilegesChanged", "d"),
            &written,
            t0 + SignedDuration::from_mins(5),
        );
        assert_eq!(fourth, Publish::Repeat { name, count: 4 });
    }

    #[test]
    fn other_objects_reasons_and_expired_events_are_new() {
        let mut series = Series::default();
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let changed = event("PrivilegesChanged", "a");
        assert!(matches!(
            send(&mut series, &changed, &member("ana"), t0),
            Publish::Create { .. }
        ));
        assert!(matches!(
            send(&mut series, &changed, &member("bo"), t0),
            Publish::Create { .. }
        ));
        assert!(matches!(
            send(&mut series, &event("Unresolved", "a"), &member("ana"), t0),
            Publish::Create { .. }
        ));
        let mut warning = event("PrivilegesChanged", "a");
        warning.type_ = EventType::Warning;
        assert!(matches!(
            send(&mut series, &warning, &member("ana"), t0),
            Publish::Create { .. }
        ));
        assert_eq!(series.seen.len(), 4);
        // Seven minutes later every one has expired: a new Event, and only
        // it remembered.
        let later = t0 + SignedDuration::from_mins(7);
        assert!(matches!(
            send(&mut series, &changed, &member("ana"), later),
            Publish::Create { .. }
        ));
        assert_eq!(series.seen.len(), 1);
    }

    #[test]
    fn a_burst_is_forgotten_and_its_memory_given_back() {
        let mut series = Series::default();
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let changed = event("PrivilegesChanged", "a");
        for i in 0..5_000 {
            send(&mut series, &changed, &member(&format!("m{i}")), t0);
        }
        assert_eq!(series.seen.len(), 5_000);
        send(
            &mut series,
            &changed,
            &member("late"),
            t0 + SignedDuration::from_mins(10),
        );
        assert_eq!(series.seen.len(), 1);
        assert!(series.seen.capacity() < 64, "{}", series.seen.capacity());
    }
}
