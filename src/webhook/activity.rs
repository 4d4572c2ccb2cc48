//! The activity record: every admitted and denied change, recorded with who, what and when:
//! a `tracing` line (target `orgaccess::activity`), a Kubernetes Event
//! (events.k8s.io/v1) and an in-memory ring listed at `GET /activity`.
//!
//! Records carry names, the requester and the decision's message, never an
//! object's content (API key values are not in specs anyway, and nothing here
//! dumps a spec).
//!
//! Only a request that arrived on a connection the webhook authenticated as
//! the apiserver (its client certificate, [`super::tls::Authenticated`]) is
//! published as an Event. Any other record says `"caller": "not
//! authenticated"`: without client certificates, whoever reaches the port can
//! send a review naming any user, and such a record is a claim, not a fact.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Reporter};
use serde::Serialize;
use tokio::sync::mpsc;

use super::metrics::{Metrics, ResultLabel};
use crate::core::rules::{Requester, Rule};
use crate::judge::Judgement;

/// The log target of activity lines.
pub const TARGET: &str = "orgaccess::activity";

/// Events waiting to be published; past this, new ones are dropped (and
/// counted) rather than slowing admission down.
const EVENT_QUEUE: usize = 1024;

/// Who sent an admission request, as far as the webhook can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Caller {
    /// A connection that presented the apiserver's client certificate.
    #[serde(rename = "apiserver")]
    Apiserver,
    /// Anyone who reached the port: the webhook does not require client
    /// certificates (`--webhook-client-ca-file` unset), so the review, its
    /// user and its groups may be forged. Recorded, never published as an Event.
    #[serde(rename = "not authenticated")]
    NotAuthenticated,
}

impl Caller {
    pub fn as_str(self) -> &'static str {
        match self {
            Caller::Apiserver => "apiserver",
            Caller::NotAuthenticated => "not authenticated",
        }
    }
}

/// One admission decision.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// When the decision was made (RFC 3339).
    pub time: jiff::Timestamp,
    /// Who sent the request: `apiserver` (authenticated by its client
    /// certificate) or `not authenticated`.
    pub caller: Caller,
    /// The admission request's uid (also in the apiserver's audit log).
    pub uid: String,
    /// The Kubernetes user name of the requester.
    pub user: String,
    /// Its Kubernetes groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// How the rules saw the requester: `trusted`, `operator`, `member` or `unmapped`.
    pub requester: &'static str,
    /// The Members the user maps to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// CREATE, UPDATE or DELETE.
    pub operation: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub allowed: bool,
    /// The rules that refused the change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// The denial message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A server-side dry run: logged and listed, but no Event (the webhook
    /// declares no side effects).
    pub dry_run: bool,
}

/// What a request asked, as the record names it.
#[derive(Debug)]
pub struct Asked {
    pub uid: String,
    pub user: String,
    pub groups: Vec<String>,
    pub operation: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub dry_run: bool,
}

impl Activity {
    /// The record of a judged request. The caller is not known here: the
    /// server says (`Validator::handle_from`).
    pub fn of(judgement: &Judgement, asked: Asked) -> Activity {
        let (requester, members) = match &judgement.requester {
            Requester::Trusted => ("trusted", vec![]),
            Requester::Operator => ("operator", vec![]),
            Requester::Members { members, .. } => ("member", members.clone()),
            Requester::Unmapped { .. } => ("unmapped", vec![]),
        };
        Activity {
            time: jiff::Timestamp::now(),
            caller: Caller::NotAuthenticated,
            uid: asked.uid,
            user: asked.user,
            groups: asked.groups,
            requester,
            members,
            operation: asked.operation,
            kind: asked.kind,
            namespace: asked.namespace,
            name: asked.name,
            allowed: judgement.allowed(),
            rules: judgement.violations.iter().map(|v| v.rule).collect(),
            message: judgement.message.clone(),
            dry_run: asked.dry_run,
        }
    }
}

/// Longest message kept in a record (ring, log line, Event), in bytes.
pub const MAX_MESSAGE: usize = 2048;
/// Longest user, group, member or object name kept, in bytes.
pub const MAX_NAME: usize = 256;
/// Most groups and members kept per record.
pub const MAX_LIST: usize = 32;

impl Activity {
    /// Cuts what a request supplied to sizes worth keeping: whatever it
    /// carried, a record costs at most a few kilobytes.
    pub fn bounded(mut self) -> Activity {
        let name = |s: &mut String| {
            if s.len() > MAX_NAME {
                *s = truncate(std::mem::take(s), MAX_NAME);
            }
        };
        for s in [
            &mut self.uid,
            &mut self.user,
            &mut self.namespace,
            &mut self.name,
        ] {
            name(s);
        }
        for list in [&mut self.groups, &mut self.members] {
            if list.len() > MAX_LIST {
                let more = list.len() - MAX_LIST + 1;
                list.truncate(MAX_LIST - 1);
                list.push(format!("... and {more} more"));
            }
            list.iter_mut().for_each(name);
        }
        if let Some(m) = self.message.take() {
            self.message = Some(truncate(m, MAX_MESSAGE));
        }
        self
    }

    fn summary(&self) -> String {
        let mut who = if self.members.is_empty() {
            format!("{} ({})", self.user, self.requester)
        } else {
            format!("{} (member {})", self.user, self.members.join(", "))
        };
        if self.caller == Caller::NotAuthenticated {
            who.push_str(" [caller not authenticated]");
        }
        match (&self.message, self.allowed) {
            (Some(m), false) => format!("{who}: {m}"),
            _ => format!(
                "{who} {} {} {}/{}: admitted",
                self.operation, self.kind, self.namespace, self.name
            ),
        }
    }
}

struct Pending {
    activity: Activity,
    regarding: ObjectReference,
}

/// The activity log: ring, log lines, the Event queue and an optional audit file.
pub struct ActivityLog {
    ring: Mutex<VecDeque<Arc<Activity>>>,
    capacity: usize,
    events: Option<mpsc::Sender<Pending>>,
    metrics: Arc<Metrics>,
    file: Option<Mutex<AuditFile>>,
}

/// Where and how much of the durable record to keep.
#[derive(Clone, Debug)]
pub struct AuditFileConfig {
    /// The current file; rotated ones are `PATH.1` (newest) .. `PATH.N`.
    pub path: std::path::PathBuf,
    /// Rotate when the current file would pass this size.
    pub max_bytes: u64,
    /// Rotated files kept (older ones are deleted).
    pub keep: usize,
}

/// A JSON-lines file of decisions (one [`Activity`] per line, as listed by
/// `GET /activity`), rotated by size, like the apiserver's audit log.
struct AuditFile {
    config: AuditFileConfig,
    file: Option<std::fs::File>,
    size: u64,
}

impl AuditFile {
    fn open(config: AuditFileConfig) -> std::io::Result<AuditFile> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)?;
        let size = file.metadata()?.len();
        Ok(AuditFile {
            config,
            file: Some(file),
            size,
        })
    }

    fn rotated(&self, n: usize) -> std::path::PathBuf {
        let mut p = self.config.path.clone().into_os_string();
        p.push(format!(".{n}"));
        p.into()
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        if self.size > 0 && self.size + line.len() as u64 > self.config.max_bytes {
            self.file = None;
            let _ = std::fs::remove_file(self.rotated(self.config.keep.max(1)));
            for n in (1..self.config.keep.max(1)).rev() {
                let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
            }
            if self.config.keep == 0 {
                std::fs::remove_file(&self.config.path)?;
            } else {
                std::fs::rename(&self.config.path, self.rotated(1))?;
            }
            *self = AuditFile::open(self.config.clone())?;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                *self = AuditFile::open(self.config.clone())?;
                self.file.as_mut().expect("just opened")
            }
        };
        file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }
}

impl std::fmt::Debug for ActivityLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityLog")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl ActivityLog {
    /// A log without Events (tests, benchmarks).
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> Self {
        ActivityLog {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity: capacity.max(1),
            events: None,
            metrics,
            file: None,
        }
    }

    /// Also appends every decision to a rotated JSON-lines file.
    pub fn with_file(mut self, config: AuditFileConfig) -> std::io::Result<Self> {
        self.file = Some(Mutex::new(AuditFile::open(config)?));
        Ok(self)
    }

    /// A log that also publishes Events with `client`; spawns the publisher
    /// on the current runtime.
    pub fn with_events(
        capacity: usize,
        metrics: Arc<Metrics>,
        client: kube::Client,
        reporter: Reporter,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(EVENT_QUEUE);
        let m = metrics.clone();
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                // Each a new Event: a series of repeats of the same reason on
                // the same object keeps the first note, which would lose who
                // made the later changes.
                let result = match crate::events::create(
                    &client,
                    &reporter,
                    &event(&p.activity),
                    &p.regarding,
                )
                .await
                {
                    Ok(()) => "published",
                    Err(e) => {
                        tracing::warn!(target: TARGET, error = %e, uid = %p.activity.uid, "could not publish the activity Event");
                        "failed"
                    }
                };
                m.events.get_or_create(&ResultLabel { result }).inc();
            }
        });
        ActivityLog {
            events: Some(tx),
            ..Self::new(capacity, metrics)
        }
    }

    /// Records one decision. `regarding` is what the Event is about (the
    /// object, or its Organization when the object does not exist); no Event
    /// without it, for a dry run, or for a caller that is not the
    /// authenticated apiserver.
    pub fn record(&self, activity: Activity, regarding: Option<ObjectReference>) {
        let activity = activity.bounded();
        tracing::info!(
            target: TARGET,
            caller = activity.caller.as_str(),
            uid = %activity.uid,
            user = %activity.user,
            requester = activity.requester,
            members = ?activity.members,
            operation = activity.operation,
            kind = activity.kind,
            namespace = %activity.namespace,
            name = %activity.name,
            allowed = activity.allowed,
            rules = ?activity.rules,
            dry_run = activity.dry_run,
            denial = activity.message.as_deref().unwrap_or(""),
            "{} {} {} {}/{}",
            if activity.allowed { "admitted" } else { "denied" },
            activity.operation,
            activity.kind,
            activity.namespace,
            activity.name,
        );
        let publish = !activity.dry_run && activity.caller == Caller::Apiserver;
        if let (Some(tx), Some(regarding), true) = (&self.events, regarding, publish) {
            let pending = Pending {
                activity: activity.clone(),
                regarding,
            };
            if tx.try_send(pending).is_err() {
                self.metrics
                    .events
                    .get_or_create(&ResultLabel { result: "dropped" })
                    .inc();
            }
        }
        if let Some(file) = &self.file {
            let mut line = serde_json::to_vec(&activity).unwrap_or_default();
            line.push(b'\n');
            let written = file.lock().unwrap_or_else(|e| e.into_inner()).write(&line);
            if let Err(e) = written {
                tracing::warn!(target: TARGET, error = %e, uid = %activity.uid, "could not write the activity audit file");
            }
        }
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(Arc::new(activity));
    }

    /// The most recent records, oldest first, optionally of one namespace.
    pub fn list(&self, namespace: Option<&str>, limit: usize) -> Vec<Arc<Activity>> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Arc<Activity>> = ring
            .iter()
            .rev()
            .filter(|a| namespace.is_none_or(|ns| a.namespace == ns))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}

fn event(a: &Activity) -> Event {
    let action = match a.operation {
        "CREATE" => "Create",
        "UPDATE" => "Update",
        "DELETE" => "Delete",
        _ => "Change",
    };
    Event {
        type_: if a.allowed {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: if a.allowed { "Admitted" } else { "Denied" }.into(),
        note: Some(truncate(a.summary(), 1024)),
        action: action.into(),
        secondary: None,
    }
}

use crate::core::rules::truncate;

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(ns: &str, n: usize) -> Activity {
        Activity {
            time: jiff::Timestamp::UNIX_EPOCH,
            caller: Caller::Apiserver,
            uid: n.to_string(),
            user: "alice".into(),
            groups: vec![],
            requester: "member",
            members: vec!["alice".into()],
            operation: "CREATE",
            kind: "Group",
            namespace: ns.into(),
            name: format!("g{n}"),
            allowed: true,
            rules: vec![],
            message: None,
            dry_run: false,
        }
    }

    #[test]
    fn ring_is_bounded_and_lists_newest_last() {
        let mut registry = prometheus_client::registry::Registry::default();
        let log = ActivityLog::new(3, Arc::new(Metrics::new(&mut registry)));
        for n in 0..5 {
            log.record(activity(if n % 2 == 0 { "a" } else { "b" }, n), None);
        }
        let all: Vec<String> = log.list(None, 10).iter().map(|a| a.uid.clone()).collect();
        assert_eq!(all, ["2", "3", "4"]);
        let a: Vec<String> = log
            .list(Some("a"), 1)
            .iter()
            .map(|a| a.uid.clone())
            .collect();
        assert_eq!(a, ["4"]);
    }

    #[test]
    fn records_are_bounded_whatever_the_request_carried() {
        let mut a = activity("ns", 1);
        a.user = "u".repeat(1 << 20);
        a.groups = (0..10_000).map(|i| format!("g{i}")).collect();
        a.message = Some("é".repeat(1 << 20));
        let b = a.bounded();
        assert!(b.user.len() <= MAX_NAME);
        assert_eq!(b.groups.len(), MAX_LIST);
        assert_eq!(b.groups.last().unwrap(), "... and 9969 more");
        assert!(b.message.unwrap().len() <= MAX_MESSAGE);
    }

    #[test]
    fn the_audit_file_is_json_lines_rotated_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit").join("activity.jsonl");
        let mut registry = prometheus_client::registry::Registry::default();
        let log = ActivityLog::new(3, Arc::new(Metrics::new(&mut registry)))
            .with_file(AuditFileConfig {
                path: path.clone(),
                max_bytes: 1000,
                keep: 2,
            })
            .unwrap();
        for n in 0..30 {
            log.record(activity("a", n), None);
        }
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.len() <= 1000);
        let last: serde_json::Value =
            serde_json::from_str(current.lines().last().unwrap()).unwrap();
        assert_eq!(last["uid"], "29");
        assert!(dir.path().join("audit/activity.jsonl.1").exists());
        assert!(dir.path().join("audit/activity.jsonl.2").exists());
        assert!(!dir.path().join("audit/activity.jsonl.3").exists());
    }

    #[test]
    fn only_the_authenticated_apiserver_s_decisions_become_events() {
        let mut registry = prometheus_client::registry::Registry::default();
        let (tx, mut rx) = mpsc::channel(8);
        let log = ActivityLog {
            events: Some(tx),
            ..ActivityLog::new(8, Arc::new(Metrics::new(&mut registry)))
        };
        let regarding = || Some(ObjectReference::default());
        let forged = Activity {
            caller: Caller::NotAuthenticated,
            ..activity("ns", 1)
        };
        log.record(forged, regarding());
        assert!(rx.try_recv().is_err(), "a forged review published an Event");
        log.record(activity("ns", 2), regarding());
        let published = rx.try_recv().expect("the apiserver's decision is an Event");
        assert_eq!(published.activity.uid, "2");
        // Both are in the record; the forged one says so.
        let listed = log.list(None, 10);
        assert_eq!(listed.len(), 2);
        let json = serde_json::to_value(listed[0].as_ref()).unwrap();
        assert_eq!(json["caller"], "not authenticated");
        let json = serde_json::to_value(listed[1].as_ref()).unwrap();
        assert_eq!(json["caller"], "apiserver");
        assert!(
            Activity {
                caller: Caller::NotAuthenticated,
                ..activity("ns", 3)
            }
            .summary()
            .contains("[caller not authenticated]")
        );
    }

    #[test]
    fn notes_are_cut_on_a_character_boundary() {
        let s = truncate("é".repeat(600), 1024);
        assert!(s.len() <= 1024 && s.ends_with("..."));
    }
}
