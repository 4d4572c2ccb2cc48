//! The controller: reconciles the declared objects into each organization's
//! access state.
//!
//! Four `kube::runtime::Controller`s (Organization, Group, Member, ApiKey) read
//! the process's shared caches ([`crate::index`]: one watch per kind, the
//! per-namespace index and the stores). They start no watches of their own
//! (the API key controller's Secrets aside): every reconcile is asked for by
//! the index's routing, which names exactly the objects a change affects
//! ([`crate::index::route`]). Status is written by server-side apply only
//! when it changed; only the Lease holder reconciles.

mod apikey;
mod group;
pub mod leader;
mod member;
mod organization;
pub mod status;

/// The pure "desired status" step of each reconcile, for tests and tools:
/// from an object and its namespace in the shared index to its status.
pub mod desired {
    pub use super::apikey::{SecretValues, desired_status as api_key, key_facts as api_key_facts};
    pub use super::group::desired_status as group;
    pub use super::member::desired_status as member;
    pub use super::organization::{
        desired_status as organization, findings as organization_findings,
    };
}

pub use organization::builtin_group;

pub use apikey::{KEY_LABEL, PREVIOUS_KEY, VALUE_KEY, fingerprint, secret_name};

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::{ApiKey, Group, Member, Organization};
use crate::events;
use crate::index::watch::{Caches, Scope, channels};

/// The controller's clock: now, shifted by `ORGACCESS_CLOCK_OFFSET_SECONDS`.
///
/// Invitations expire after 31 days and keys after months; the offset lets
/// tests (and expiry drills) run the real binary "in the future" instead of
/// waiting. Unset in production.
pub fn now() -> jiff::Timestamp {
    static OFFSET: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
        std::env::var("ORGACCESS_CLOCK_OFFSET_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    });
    let t = jiff::Timestamp::now();
    t.saturating_add(jiff::SignedDuration::from_secs(*OFFSET))
        .unwrap_or(t)
}

/// Every object is looked at again this often even when nothing changed:
/// one pass routing everything the index holds ([`Caches::resync`]), so a
/// reconcile with no deadline of its own returns `Action::await_change()`
/// and the controllers keep no timer per object (a scheduled requeue holds
/// two copies of the object's reference: about 0.6 KiB per object in the
/// scale run's heap profile, docs/performance.md). Deadlines (an invitation's expiry, an API key's
/// warning, expiry and rotation window) are still requeues, at most this far
/// out.
pub const RESYNC: Duration = Duration::from_secs(30 * 60);

/// Routes everything to the controllers every [`RESYNC`], from one
/// [`RESYNC`] after they start (starting routes everything once already).
async fn resync_every(caches: Caches) {
    let period = RESYNC;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        caches.resync();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object is not namespaced")]
    NotNamespaced,
}

/// The `error` label of `orgaccess_controller_reconcile_failures_total`: a
/// fixed set, so every series can exist (at zero) from the start.
const ERROR_LABELS: [&str; 8] = [
    "conflict",
    "forbidden",
    "not_found",
    "invalid",
    "throttled",
    "server",
    "transport",
    "not_namespaced",
];

impl Error {
    fn label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(e)) => match e.code {
                409 => "conflict",
                401 | 403 => "forbidden",
                404 | 410 => "not_found",
                429 => "throttled",
                500.. => "server",
                _ => "invalid",
            },
            Error::Kube(_) => "transport",
            Error::NotNamespaced => "not_namespaced",
        }
    }
}

/// The kinds the controller reconciles, as they label its metrics.
const KINDS: [&str; 4] = ["Organization", "Group", "Member", "ApiKey"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub kind: String,
    pub error: &'static str,
}

/// Reconcile metrics, labelled by kind (never by object: bounded cardinality).
pub struct Metrics {
    pub reconciles: Family<KindLabel, Counter>,
    pub failures: Family<ErrorLabel, Counter>,
    pub status_writes: Family<KindLabel, Counter>,
    pub duration: Family<KindLabel, Histogram, fn() -> Histogram>,
    /// Events by what became of them: published, failed or dropped.
    pub events: Family<ResultLabel, Counter>,
    /// 1 while this replica holds the Lease (or runs without election), else 0.
    pub leader: Gauge,
    /// Terms of leadership that ended without a shutdown: the Lease taken
    /// by another replica, or not renewed in time.
    pub leadership_lost: Counter,
    /// `orgaccess_advice_findings`, set by the Organization reconcile.
    pub advice: crate::metrics::AdviceMetrics,
}

fn duration_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
}

impl Metrics {
    /// The controller's metrics; the advice gauges labelled by namespace
    /// only with `namespace_labels` ([`crate::metrics::AdviceMetrics`]).
    pub fn new(registry: &mut Registry, namespace_labels: bool) -> Arc<Metrics> {
        let m = Metrics {
            reconciles: Family::default(),
            failures: Family::default(),
            status_writes: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            events: Family::default(),
            leader: Gauge::default(),
            leadership_lost: Counter::default(),
            advice: crate::metrics::AdviceMetrics::new(namespace_labels),
        };
        m.advice.register(registry);
        m.create_known_series();
        let sub = registry.sub_registry_with_prefix("orgaccess_controller");
        sub.register(
            "reconciles",
            "Reconciles run, by kind",
            m.reconciles.clone(),
        );
        sub.register(
            "reconcile_failures",
            "Reconciles that failed, by kind and error",
            m.failures.clone(),
        );
        sub.register(
            "status_writes",
            "Status writes (only when status changed), by kind",
            m.status_writes.clone(),
        );
        sub.register(
            "reconcile_duration_seconds",
            "Reconcile duration, by kind",
            m.duration.clone(),
        );
        sub.register(
            "events",
            "Events the controller published, failed to publish, or dropped because the queue was full",
            m.events.clone(),
        );
        sub.register(
            "leader",
            "1 while this replica holds the leader-election Lease and reconciles, else 0",
            m.leader.clone(),
        );
        sub.register(
            "leadership_lost",
            "Times this replica stopped leading without being asked to (the Lease taken, or not renewed within the renew deadline); it then campaigns again",
            m.leadership_lost.clone(),
        );
        Arc::new(m)
    }

    /// Every series of every kind (and every failure class) at zero, so
    /// rates and alerts have data before the first reconcile or failure.
    fn create_known_series(&self) {
        for result in ["published", "failed", "dropped"] {
            let _ = self.events.get_or_create_owned(&ResultLabel { result });
        }
        for kind in KINDS {
            let label = KindLabel { kind: kind.into() };
            let _ = self.reconciles.get_or_create_owned(&label);
            let _ = self.status_writes.get_or_create_owned(&label);
            let _ = self.duration.get_or_create_owned(&label);
            for error in ERROR_LABELS {
                let _ = self.failures.get_or_create_owned(&ErrorLabel {
                    kind: kind.into(),
                    error,
                });
            }
        }
    }

    fn event(&self, result: &'static str) {
        self.events.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn status_write(&self, kind: &str) {
        self.status_writes
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }
}

/// What every reconcile gets.
pub struct Ctx {
    pub client: Client,
    pub caches: Caches,
    pub metrics: Arc<Metrics>,
    /// Days before expiry when an API key is reported as soon to expire.
    pub api_key_warning_days: i64,
    /// Events waiting for the publisher task ([`Ctx::publish`]).
    events: tokio::sync::mpsc::Sender<(Event, ObjectReference)>,
    /// Consecutive failures per object, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// API key Secrets created by this process whose uid the key's status
    /// does not hold yet, by ApiKey uid (`apikey::Claims::created`).
    created_secrets: Mutex<HashMap<String, String>>,
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
        let object = Self::key(obj);
        if changes.is_empty() {
            tracing::debug!(%object, "reconciled: no change");
        } else {
            tracing::info!(%object, changes = %changes.join("; "), "reconciled");
        }
    }

    fn key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
        format!(
            "{}/{}/{}",
            K::kind(&()),
            obj.meta().namespace.as_deref().unwrap_or(""),
            obj.meta().name.as_deref().unwrap_or("")
        )
    }
}

/// Wraps a reconcile with metrics, logging and backoff bookkeeping.
async fn observed<K, F, Fut>(obj: Arc<K>, ctx: Arc<Ctx>, run: F) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: FnOnce(Arc<K>, Arc<Ctx>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let kind = K::kind(&()).to_string();
    let key = Ctx::key(obj.as_ref());
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
fn spawn_event_publisher(
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

/// Exponential backoff per object: 1 s, 2 s, 4 s ... capped at 5 minutes.
fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Ctx>,
) -> Action {
    let key = Ctx::key(obj.as_ref());
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
    let delay = Duration::from_secs(1u64 << attempt.min(8)).min(Duration::from_secs(300));
    tracing::warn!(object = %key, %error, attempt, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Controller settings.
#[derive(Clone, Debug, clap::Args)]
pub struct ControllerArgs {
    /// Objects reconciled at once, per kind.
    #[arg(long, env = "ORGACCESS_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Take part in leader election (disable only for a single local replica).
    #[arg(long, env = "ORGACCESS_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(
        long,
        env = "ORGACCESS_LEASE_NAMESPACE",
        default_value = "orgaccess-system"
    )]
    pub lease_namespace: String,
    /// Name of the leader-election Lease: one per installation (the chart
    /// uses `<release>-controller`), so two releases never share one.
    #[arg(
        long,
        env = "ORGACCESS_LEASE_NAME",
        default_value = "orgaccess-controller"
    )]
    pub lease_name: String,
    /// Identity in the Lease (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Report an API key as soon to expire (a Warning event and the
    /// `ExpiringSoon` condition) this many days before its expiry.
    #[arg(long, env = "ORGACCESS_API_KEY_EXPIRY_WARNING_DAYS", default_value_t = crate::core::apikey::DEFAULT_EXPIRY_WARNING_DAYS)]
    pub api_key_expiry_warning_days: i64,
    /// Label the least-privilege gauges (`orgaccess_advice_findings`) with
    /// each organization's namespace. Off by default: `/metrics` is served to
    /// whoever reaches the admin port, and namespaces name tenants.
    #[arg(long, env = "ORGACCESS_METRICS_NAMESPACE_LABELS", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub metrics_namespace_labels: bool,
}

/// Readiness of the controller: caches synced (and, once leading, controllers running).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed)
    }
}

/// Runs the controllers until `shutdown` resolves.
///
/// With leader election, the controllers run only while this replica
/// holds the Lease. When it loses the Lease (another replica took it, or no
/// renewal succeeded within the renew deadline, e.g. while the apiserver
/// restarts) the controllers stop and the replica campaigns again, in the
/// same process: the watches and the index go on, so an apiserver outage
/// longer than the renew deadline needs no restart of the operator. A new
/// term starts as the first did, routing everything the index holds.
pub async fn run(
    client: Client,
    caches: Caches,
    scope: Scope,
    args: ControllerArgs,
    registry: Arc<Mutex<Registry>>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Every series exists from the first scrape, before anything can fail.
    let metrics = {
        let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
        crate::metrics::register_process(&mut registry);
        Metrics::new(&mut registry, args.metrics_namespace_labels)
    };
    preflight(&client, &scope).await?;
    caches.wait_until_synced().await;
    readiness.set();
    tracing::info!("caches synced");

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("orgaccess-{}", std::process::id()));
    let mut elector = args.leader_election.then(|| {
        leader::Elector::new(
            client.clone(),
            leader::LeaderConfig::new(
                args.lease_namespace.clone(),
                args.lease_name.clone(),
                identity.clone(),
            ),
        )
    });
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let reporter = Reporter {
        controller: "orgaccess".into(),
        instance: Some(identity),
    };
    loop {
        if let Some(elector) = elector.as_mut() {
            tokio::select! {
                () = elector.acquire() => {}
                _ = shutdown.clone() => return Ok(()),
            }
        }
        metrics.leader.set(1);
        let term = Term {
            client: &client,
            caches: &caches,
            scope: &scope,
            args: &args,
            metrics: &metrics,
            reporter: reporter.clone(),
        };
        let lost = match elector.as_mut() {
            Some(elector) => tokio::select! {
                () = term.lead(shutdown.clone()) => None,
                lost = elector.hold() => Some(lost),
            },
            None => {
                term.lead(shutdown.clone()).await;
                None
            }
        };
        caches.stop_routing();
        metrics.leader.set(0);
        match lost {
            Some(reason) => {
                metrics.leadership_lost.inc();
                tracing::warn!(%reason, "stopped leading: the controllers stopped; campaigning again");
            }
            None => {
                tracing::info!("controllers stopped");
                // Stopped on request while leading: hand the Lease over at once.
                if let Some(elector) = &elector
                    && let Err(e) = elector.release().await
                {
                    tracing::warn!(error = %e, "could not release the lease; another replica takes over when it expires");
                }
                return Ok(());
            }
        }
    }
}

/// What one term of leadership needs.
struct Term<'a> {
    client: &'a Client,
    caches: &'a Caches,
    scope: &'a Scope,
    args: &'a ControllerArgs,
    metrics: &'a Arc<Metrics>,
    reporter: Reporter,
}

impl Term<'_> {
    /// Runs the four controllers until `shutdown` resolves (or, when the
    /// caller drops this future, at once: in-flight reconciles are
    /// cancelled, as when the process ends).
    async fn lead(self, shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static) {
        let Term {
            client,
            caches,
            scope,
            args,
            metrics,
            reporter,
        } = self;
        // Leading: from now on the index routes every change here, starting
        // with everything it holds (each object is reconciled once).
        let (senders, triggers) = channels();
        caches.route_to(senders);
        let ctx = Arc::new(Ctx {
            client: client.clone(),
            caches: caches.clone(),
            metrics: metrics.clone(),
            api_key_warning_days: args.api_key_expiry_warning_days,
            events: spawn_event_publisher(client.clone(), reporter, metrics.clone()),
            failures: Mutex::default(),
            created_secrets: Mutex::default(),
        });
        let cfg = ControllerConfig::default()
            .concurrency(args.concurrency)
            .debounce(Duration::from_millis(200));
        // No trigger stream of their own: the index's routing is the only one.
        fn routed<K: Clone + Send + 'static>() -> futures::stream::Pending<Result<K, watcher::Error>>
        {
            futures::stream::pending()
        }
        fn drain<K: Resource, E: std::fmt::Display, T>(
            r: Result<(ObjectRef<K>, T), E>,
        ) -> impl Future<Output = ()>
        where
            K::DynamicType: Eq + std::hash::Hash,
        {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller event");
            }
            futures::future::ready(())
        }

        let orgs = Controller::for_stream(
            routed::<Organization>(),
            caches.stores.organizations.clone(),
        )
        .with_config(cfg.clone())
        .reconcile_on(triggers.organizations)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |o, c| observed(o, c, organization::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(drain);
        let groups = Controller::for_stream(routed::<Group>(), caches.stores.groups.clone())
            .with_config(cfg.clone())
            .reconcile_on(triggers.groups)
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |o, c| observed(o, c, group::reconcile),
                error_policy,
                ctx.clone(),
            )
            .for_each(drain);
        let members = Controller::for_stream(routed::<Member>(), caches.stores.members.clone())
            .with_config(cfg.clone())
            .reconcile_on(triggers.members)
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |o, c| observed(o, c, member::reconcile),
                error_policy,
                ctx.clone(),
            )
            .for_each(drain);
        let keys = Controller::for_stream(routed::<ApiKey>(), caches.stores.api_keys.clone())
            .with_config(cfg)
            .owns(
                scope.api::<Secret>(client),
                watcher::Config::default().labels(KEY_LABEL),
            )
            .reconcile_on(triggers.api_keys)
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |o, c| observed(o, c, apikey::reconcile),
                error_policy,
                ctx.clone(),
            )
            .for_each(drain);
        tokio::select! {
            _ = async { tokio::join!(orgs, groups, members, keys) } => {}
            () = resync_every(caches.clone()) => {}
        }
    }
}

/// Fails fast with an install hint when the CRDs are missing.
async fn preflight(client: &Client, scope: &Scope) -> anyhow::Result<()> {
    let api = scope.api::<Organization>(client);
    if let Err(e) = api.list(&kube::api::ListParams::default().limit(1)).await {
        anyhow::bail!(
            "cannot list organizations.orgaccess.dev ({e}); install the CRDs first: kubectl apply -f crds/"
        );
    }
    Ok(())
}

/// For logs: a short description without values.
pub fn describe<K: ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}
