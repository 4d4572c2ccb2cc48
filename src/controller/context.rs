//! What every reconcile gets ([`Ctx`]), and what wraps each one: metrics
//! and backoff ([`observed`], [`error_policy`]) and the Event publisher.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, Reporter};
use kube::{Client, Resource};

use super::Error;
use super::metrics::{ErrorLabel, KindLabel, Metrics};
use crate::events;
use crate::index::watch::Caches;

/// What every reconcile gets.
pub struct Ctx {
    pub client: Client,
    pub caches: Caches,
    pub metrics: Arc<Metrics>,
    /// Days before expiry when an API key is reported as soon to expire.
    pub api_key_warning_days: i64,
    /// Days before a membership's end when the member is warned.
    pub membership_warning_days: i64,
    /// Events waiting for the publisher task ([`Ctx::publish`]).
    pub(super) events: tokio::sync::mpsc::Sender<(Event, ObjectReference)>,
    /// Consecutive failures per object, for exponential backoff.
    pub(super) failures: Mutex<HashMap<String, u32>>,
    /// API key Secrets created by this process whose uid the key's status
    /// does not hold yet, by ApiKey uid (`apikey::Claims::created`).
    pub(super) created_secrets: Mutex<HashMap<String, String>>,
}

impl Ctx {
    /// The Secret this process created for the ApiKey `key_uid`, until its
    /// status records it.
    pub fn created_secret(&self, key_uid: &str) -> Option<String> {
        let created = self.created_secrets.lock();
        created
            .unwrap_or_else(|e| e.into_inner())
            .get(key_uid)
            .cloned()
    }

    /// Remembers (or, with `None`, forgets) the Secret created for a key.
    pub fn remember_created_secret(&self, key_uid: &str, secret_uid: Option<String>) {
        let mut created = self
            .created_secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match secret_uid {
            Some(uid) => created.insert(key_uid.to_string(), uid),
            None => created.remove(key_uid),
        };
    }

    /// Queues an Event for the publisher task. Events are best effort and
    /// never hold up a reconcile: a group edit that changes a thousand
    /// members' privileges writes their statuses first and the thousand
    /// Events behind them, one at a time, as client-go's event broadcaster
    /// does; when the queue is full the Event is dropped and counted.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, obj: &K, event: Event) {
        if self.events.try_send((event, obj.object_ref(&()))).is_err() {
            self.metrics.event("dropped");
        }
    }

    /// The reconcile's log line: `info` naming the object and what changed
    /// (field names and actions, never values), `debug` when nothing did.
    pub fn reconciled<K: Resource<DynamicType = ()>>(&self, obj: &K, changes: &[String]) {
        let object = object_key(obj);
        if changes.is_empty() {
            tracing::debug!(%object, "reconciled: no change");
        } else {
            tracing::info!(%object, changes = %changes.join("; "), "reconciled");
        }
    }
}

/// An object as the logs and the backoff bookkeeping name it:
/// `Kind/namespace/name`.
fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    )
}

/// Wraps a reconcile with metrics, logging and backoff bookkeeping.
pub(super) async fn observed<K, F, Fut>(obj: Arc<K>, ctx: Arc<Ctx>, run: F) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: FnOnce(Arc<K>, Arc<Ctx>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let kind = K::kind(&()).to_string();
    let key = object_key(obj.as_ref());
    let started = std::time::Instant::now();
    ctx.metrics
        .reconciles
        .get_or_create(&KindLabel { kind: kind.clone() })
        .inc();
    let result = run(obj, ctx.clone()).await;
    ctx.metrics
        .duration
        .get_or_create(&KindLabel { kind: kind.clone() })
        .observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }
    result
}

/// Events waiting to be published before new ones are dropped.
const EVENT_QUEUE: usize = 1024;

/// Publishes queued Events one at a time until every sender is gone.
///
/// Repeats are counted in a series as kube's `Recorder` counts them, with
/// a compact memory of what was published ([`events::Series`]). Once
/// nothing was published for longer than [`events::SERIES_TTL`], every
/// Event remembered has expired: the memory is dropped whole.
pub(super) fn spawn_event_publisher(
    client: Client,
    reporter: Reporter,
    metrics: Arc<Metrics>,
) -> tokio::sync::mpsc::Sender<(Event, ObjectReference)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Event, ObjectReference)>(EVENT_QUEUE);
    let idle = events::SERIES_TTL.unsigned_abs() + Duration::from_secs(60);
    tokio::spawn(async move {
        let mut series = events::Series::default();
        loop {
            let next = match tokio::time::timeout(idle, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    series = events::Series::default();
                    continue;
                }
            };
            let Some((event, regarding)) = next else {
                break;
            };
            match events::publish(&client, &reporter, &mut series, &event, &regarding).await {
                Ok(()) => metrics.event("published"),
                Err(e) => {
                    tracing::warn!(error = %e, reason = %event.reason, "could not record event");
                    metrics.event("failed");
                }
            }
        }
    });
    tx
}

/// The wait before retrying an object after its `attempt`th failure in a
/// row: 2 s, 4 s, 8 s ... doubling up to 256 s (the eighth failure and on).
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(8))
}

/// Exponential backoff per object ([`backoff`]), counted in the metrics.
pub(super) fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Ctx>,
) -> Action {
    let key = object_key(obj.as_ref());
    let attempt = {
        let mut f = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let kind = K::kind(&()).to_string();
    ctx.metrics
        .failures
        .get_or_create(&ErrorLabel {
            kind,
            error: error.label(),
        })
        .inc();
    let delay = backoff(attempt);
    tracing::warn!(object = %key, %error, attempt, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_five_minutes() {
        let cases = [
            (1, 2),
            (2, 4),
            (3, 8),
            (7, 128),
            (8, 256),
            (9, 256),
            (u32::MAX, 256),
        ];
        for (attempt, secs) in cases {
            assert_eq!(backoff(attempt), Duration::from_secs(secs), "{attempt}");
        }
    }

    #[test]
    fn an_object_is_named_by_kind_namespace_and_name() {
        let mut g =
            crate::controller::builtin_group(crate::core::builtin::BuiltinGroup::Administrators);
        g.metadata.namespace = Some("acme".into());
        assert_eq!(object_key(&g), "Group/acme/administrators");
        g.metadata.namespace = None;
        assert_eq!(object_key(&g), "Group//administrators");
    }
}
