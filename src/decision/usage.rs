//! When each API key was last used: every successful key
//! verification is recorded in memory ([`Usage::record`]), and a flusher
//! ([`flush_every`]) writes `status.lastUsedAt` once per interval for the
//! keys used since, so owners can see keys nobody uses.
//!
//! - **Coarse.** A use is recorded as its time truncated to the interval
//!   (`--decision-usage-interval`, default 5 minutes): the status says "used
//!   in the 5 minutes from 19:05", never when each request came.
//! - **Cheap on the request path.** Recording a key already seen is a read
//!   lock, two map lookups and an atomic compare (a store only when the
//!   coarse time moved on): no allocation. The first use of a key allocates
//!   its slot once.
//! - **Bounded by the keys, never by requests.** Only a verified key is
//!   recorded (its name comes from the index's key table, not from the
//!   request), so the recorder holds at most one slot per indexed key; a
//!   slot whose key left the index is dropped at the next flush.
//! - **At most one write per key per interval per replica, none when
//!   idle.** A flush writes a key only when it was used since the last flush
//!   and its coarse time is newer than both the `lastUsedAt` the index holds
//!   (what any replica wrote) and what this replica last wrote. Every
//!   replica serves decisions and flushes its own uses; a replica whose
//!   coarse time is already in status writes nothing.
//! - **Its own field.** Each write is a server-side apply of
//!   `status.lastUsedAt` alone, as field manager [`MANAGER`]: the
//!   controller's status applies neither send nor compare it
//!   (`index::cached_status::FOREIGN`), so they never remove it, and a
//!   usage write makes the controller write nothing (the index routes a
//!   status write nowhere; the key digest table is unchanged).
//! - **Failures.** A key deleted meanwhile (404) is forgotten; any other
//!   failure is counted and the use retried at the next flush. Nothing here
//!   sees a key value: slots are keyed by namespace and key name.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::api::ApiKey;
use crate::index::Index;

/// Field manager of the usage writes (`status.lastUsedAt` only).
pub const MANAGER: &str = "orgaccess-usage";

/// The shortest recording interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// Status writes at once during a flush.
const CONCURRENT_WRITES: usize = 8;

/// How long a flush at shutdown may take.
const LAST_FLUSH: Duration = Duration::from_secs(5);

/// The recording interval (`--decision-usage-interval`): whole seconds, at
/// least [`MIN_INTERVAL`]; written as `5m`, `90s`, `1h` or ISO 8601 (`PT5M`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(Duration);

impl Interval {
    pub const DEFAULT: Interval = Interval(Duration::from_secs(300));

    pub fn new(d: Duration) -> Result<Interval, String> {
        if d < MIN_INTERVAL {
            return Err(format!(
                "the usage interval must be at least {}s",
                MIN_INTERVAL.as_secs()
            ));
        }
        if d.subsec_nanos() != 0 {
            return Err("the usage interval must be whole seconds".into());
        }
        Ok(Interval(d))
    }

    pub fn duration(self) -> Duration {
        self.0
    }

    fn seconds(self) -> i64 {
        i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX)
    }
}

impl Default for Interval {
    fn default() -> Self {
        Interval::DEFAULT
    }
}

impl FromStr for Interval {
    type Err = String;
    fn from_str(s: &str) -> Result<Interval, String> {
        let s = s.trim();
        let d = match s.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => s
                .parse::<SignedDuration>()
                .map_err(|e| format!("{s:?} is not a duration (e.g. 5m, 90s, PT5M): {e}"))?
                .try_into()
                .map_err(|_| format!("{s:?} is negative"))?,
        };
        Interval::new(d)
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0.as_secs())
    }
}

/// One key's usage on this replica, in Unix seconds (0: none).
#[derive(Debug, Default)]
struct Slot {
    /// The coarse time of the latest use since the last flush.
    used: AtomicI64,
    /// The coarse time this replica last wrote to the key's status.
    written: AtomicI64,
}

/// Slots by namespace, then key name.
type Slots = HashMap<String, HashMap<String, Slot>>;

/// The in-memory usage recorder: one per process, shared by every listener
/// of the decision service and its flusher.
#[derive(Debug)]
pub struct Usage {
    interval: Interval,
    slots: RwLock<Slots>,
}

impl Default for Usage {
    fn default() -> Self {
        Usage::new(Interval::DEFAULT)
    }
}

/// A status write a flush decided: key, and the coarse time to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub namespace: String,
    pub name: String,
    /// Unix seconds, a multiple of the interval.
    pub at: i64,
}

impl Due {
    /// `status.lastUsedAt` as written (RFC 3339, UTC).
    pub fn last_used_at(&self) -> String {
        Timestamp::from_second(self.at)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_string()
    }
}

/// What the index says of a key when a flush looks at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexed {
    /// No such key (deleted): its slot is dropped.
    Gone,
    /// The key, and the `status.lastUsedAt` it carries.
    LastUsed(Option<Timestamp>),
}

impl Usage {
    pub fn new(interval: Interval) -> Usage {
        Usage {
            interval,
            slots: RwLock::default(),
        }
    }

    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// `now` truncated to the interval, in Unix seconds.
    pub fn coarse(&self, now: Timestamp) -> i64 {
        let s = now.as_second();
        s - s.rem_euclid(self.interval.seconds())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Slots> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Slots> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a use of the key `name` of `namespace` at `now`. Call it only
    /// for a key the index verified (so the slots stay bounded by the keys).
    pub fn record(&self, namespace: &str, name: &str, now: Timestamp) {
        let at = self.coarse(now);
        {
            let slots = self.read();
            if let Some(slot) = slots.get(namespace).and_then(|keys| keys.get(name)) {
                // Most requests find the interval already recorded: no store.
                if slot.used.load(Ordering::Relaxed) < at {
                    slot.used.fetch_max(at, Ordering::Relaxed);
                }
                return;
            }
        }
        self.write()
            .entry(namespace.to_string())
            .or_default()
            .entry(name.to_string())
            .or_default()
            .used
            .fetch_max(at, Ordering::Relaxed);
    }

    /// Keys tracked (one slot each).
    pub fn tracked(&self) -> usize {
        self.read().values().map(HashMap::len).sum()
    }

    /// The writes a flush makes: takes the uses since the last flush and
    /// keeps those newer than what `indexed` reports in status and than
    /// what this replica wrote; drops the slots of keys that are gone.
    pub fn due(&self, indexed: impl Fn(&str, &str) -> Indexed) -> Vec<Due> {
        let mut due = Vec::new();
        let mut gone = Vec::new();
        for (namespace, keys) in self.read().iter() {
            for (name, slot) in keys {
                let used = slot.used.swap(0, Ordering::Relaxed);
                match indexed(namespace, name) {
                    Indexed::Gone => gone.push((namespace.clone(), name.clone())),
                    Indexed::LastUsed(_) if used == 0 => {}
                    Indexed::LastUsed(in_status) => {
                        let known = in_status
                            .map_or(0, |t| t.as_second())
                            .max(slot.written.load(Ordering::Relaxed));
                        if used > known {
                            due.push(Due {
                                namespace: namespace.clone(),
                                name: name.clone(),
                                at: used,
                            });
                        }
                    }
                }
            }
        }
        for (namespace, name) in gone {
            self.forget(&namespace, &name);
        }
        due
    }

    /// A write succeeded: the key's status holds `due.at`.
    pub fn written(&self, due: &Due) {
        self.with_slot(due, |slot| {
            slot.written.fetch_max(due.at, Ordering::Relaxed)
        });
    }

    /// A write failed: the use is written at the next flush.
    pub fn retry(&self, due: &Due) {
        self.with_slot(due, |slot| slot.used.fetch_max(due.at, Ordering::Relaxed));
    }

    /// Runs `f` on the slot of `due`'s key, if it still has one (a key
    /// forgotten meanwhile has none, and nothing is recorded for it).
    fn with_slot(&self, due: &Due, f: impl FnOnce(&Slot) -> i64) {
        if let Some(slot) = self
            .read()
            .get(&due.namespace)
            .and_then(|k| k.get(&due.name))
        {
            f(slot);
        }
    }

    /// The key is gone: drops its slot (and any use not yet written).
    pub fn forget(&self, namespace: &str, name: &str) {
        let mut slots = self.write();
        if let Some(keys) = slots.get_mut(namespace) {
            keys.remove(name);
            if keys.is_empty() {
                slots.remove(namespace);
            }
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// `orgaccess_decision_usage_writes_total{result}`: `written`, `gone` (the
/// key was deleted: its use is dropped) or `failed` (retried next interval).
#[derive(Clone, Debug, Default)]
pub struct UsageMetrics {
    pub writes: Family<ResultLabel, Counter>,
}

impl UsageMetrics {
    pub const RESULTS: [&'static str; 3] = ["written", "gone", "failed"];

    pub fn register(registry: &mut Registry) -> UsageMetrics {
        let m = UsageMetrics::default();
        for result in Self::RESULTS {
            let _ = m.writes.get_or_create(&ResultLabel { result });
        }
        registry
            .sub_registry_with_prefix("orgaccess_decision_usage")
            .register(
                "writes",
                "API key usage status writes (status.lastUsedAt), by result: written, gone (key deleted), failed (retried next interval)",
                m.writes.clone(),
            );
        m
    }

    fn count(&self, result: &'static str) {
        self.writes.get_or_create(&ResultLabel { result }).inc();
    }
}

/// What the index says of a key, for [`Usage::due`].
pub fn indexed(index: &Index, namespace: &str, name: &str) -> Indexed {
    if index.has_api_key(namespace, name) {
        Indexed::LastUsed(index.last_used(namespace, name))
    } else {
        Indexed::Gone
    }
}

/// One flush: the due writes, each a server-side apply of
/// `status.lastUsedAt` as [`MANAGER`].
pub async fn flush(usage: &Usage, index: &Index, client: &kube::Client, metrics: &UsageMetrics) {
    let due = usage.due(|ns, name| indexed(index, ns, name));
    futures::stream::iter(due)
        .for_each_concurrent(CONCURRENT_WRITES, |d| async move {
            let api: Api<ApiKey> = Api::namespaced(client.clone(), &d.namespace);
            let patch = serde_json::json!({
                "apiVersion": ApiKey::api_version(&()),
                "kind": ApiKey::kind(&()),
                "status": {"lastUsedAt": d.last_used_at()},
            });
            let written = api
                .patch_status(
                    &d.name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await;
            match written {
                Ok(_) => {
                    usage.written(&d);
                    metrics.count("written");
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    usage.forget(&d.namespace, &d.name);
                    metrics.count("gone");
                }
                Err(e) => {
                    usage.retry(&d);
                    metrics.count("failed");
                    // Names only: a usage write never holds a key value.
                    tracing::warn!(
                        namespace = %d.namespace,
                        apikey = %d.name,
                        error = %e,
                        "could not record the key's last use; retrying at the next interval"
                    );
                }
            }
        })
        .await;
}

/// Flushes every interval until `shutdown`, then once more (bounded), so a
/// replica going away does not lose its last interval's uses.
pub async fn flush_every(
    usage: Arc<Usage>,
    index: Arc<Index>,
    client: kube::Client,
    metrics: UsageMetrics,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut ticks = tokio::time::interval(usage.interval().duration());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is now: nothing used yet
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = ticks.tick() => flush(&usage, &index, &client, &metrics).await,
            () = &mut shutdown => break,
        }
    }
    let _ = tokio::time::timeout(LAST_FLUSH, flush(&usage, &index, &client, &metrics)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn usage(secs: u64) -> Usage {
        Usage::new(Interval::new(Duration::from_secs(secs)).unwrap())
    }

    fn never(_: &str, _: &str) -> Indexed {
        Indexed::LastUsed(None)
    }

    #[test]
    fn intervals_parse_whole_seconds_of_at_least_ten() {
        for (text, secs) in [
            ("5m", 300),
            ("90s", 90),
            ("PT5M", 300),
            ("1h", 3600),
            ("10", 10),
        ] {
            assert_eq!(
                text.parse::<Interval>().unwrap().duration(),
                Duration::from_secs(secs),
                "{text}"
            );
        }
        for bad in ["9s", "0", "-5m", "1.5s", "soon", ""] {
            assert!(bad.parse::<Interval>().is_err(), "{bad}");
        }
        assert_eq!(Interval::default().duration(), Duration::from_secs(300));
    }

    #[test]
    fn a_use_is_truncated_to_the_interval() {
        let u = usage(300);
        assert_eq!(
            u.coarse(at("2026-11-30T19:07:59.9Z")),
            at("2026-11-30T19:05:00Z").as_second()
        );
        assert_eq!(
            u.coarse(at("2026-11-30T19:05:00Z")),
            at("2026-11-30T19:05:00Z").as_second()
        );
        u.record("acme", "search", at("2026-11-30T19:07:59Z"));
        let due = u.due(never);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].last_used_at(), "2026-11-30T19:05:00Z");
    }

    #[test]
    fn many_uses_in_an_interval_make_one_write_and_none_after() {
        let u = usage(60);
        for s in 0..1000 {
            u.record(
                "acme",
                "search",
                at("2026-11-30T19:05:00Z") + SignedDuration::from_millis(s * 50),
            );
        }
        assert_eq!(u.tracked(), 1, "one slot, whatever the requests");
        let due = u.due(never);
        assert_eq!(
            due,
            vec![Due {
                namespace: "acme".into(),
                name: "search".into(),
                at: at("2026-11-30T19:05:00Z").as_second()
            }]
        );
        u.written(&due[0]);
        // Used again in the same interval: already written by this replica,
        // even before the watch brings the status back.
        u.record("acme", "search", at("2026-11-30T19:05:40Z"));
        assert!(u.due(never).is_empty());
        // The next interval is written, once.
        u.record("acme", "search", at("2026-11-30T19:06:01Z"));
        assert_eq!(u.due(never).len(), 1);
        assert!(u.due(never).is_empty());
    }

    #[test]
    fn idle_keys_and_idle_replicas_write_nothing() {
        let u = usage(60);
        assert!(u.due(never).is_empty());
        u.record("acme", "search", at("2026-11-30T19:05:00Z"));
        assert_eq!(u.due(never).len(), 1);
        assert!(u.due(never).is_empty(), "no use since the last flush");
    }

    #[test]
    fn a_time_already_in_status_is_not_written_again() {
        let u = usage(60);
        u.record("acme", "search", at("2026-11-30T19:05:30Z"));
        // Another replica wrote this interval already.
        let same = |_: &str, _: &str| Indexed::LastUsed(Some(at("2026-11-30T19:05:00Z")));
        assert!(u.due(same).is_empty());
        u.record("acme", "search", at("2026-11-30T19:04:30Z"));
        let newer = |_: &str, _: &str| Indexed::LastUsed(Some(at("2026-11-30T19:05:00Z")));
        assert!(
            u.due(newer).is_empty(),
            "an older use never goes back in time"
        );
        u.record("acme", "search", at("2026-11-30T19:06:30Z"));
        assert_eq!(u.due(same).len(), 1);
    }

    #[test]
    fn a_deleted_key_is_forgotten_and_a_failed_write_retried() {
        let u = usage(60);
        u.record("acme", "gone", at("2026-11-30T19:05:00Z"));
        u.record("acme", "search", at("2026-11-30T19:05:00Z"));
        let due = u.due(|_, name| {
            if name == "gone" {
                Indexed::Gone
            } else {
                Indexed::LastUsed(None)
            }
        });
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].name, "search");
        assert_eq!(u.tracked(), 1, "the deleted key's slot is dropped");

        u.retry(&due[0]);
        let again = u.due(never);
        assert_eq!(again, due, "a failed write is tried at the next flush");
        u.forget("acme", "search");
        assert_eq!(u.tracked(), 0);
        u.retry(&due[0]);
        assert!(u.due(never).is_empty(), "a forgotten key is not retried");
    }

    #[test]
    fn recording_the_same_key_does_not_grow_the_recorder() {
        let u = usage(60);
        for i in 0..100 {
            u.record("acme", &format!("k{}", i % 3), at("2026-11-30T19:05:00Z"));
        }
        assert_eq!(u.tracked(), 3);
    }
}
