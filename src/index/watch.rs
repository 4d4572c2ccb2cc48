//! One watch per kind, feeding the shared [`Index`] and then a reflector
//! store of lean copies ([`Stored`]: the index has the definitions), and
//! routing every change to the reconciles it calls for.
//!
//! `orgaccess run` starts these once; the webhook, the controller and the
//! decision service all read what they fill. Each watch
//! - is guarded: an object that does not deserialize is skipped with a
//!   warning instead of breaking the watch ([`Guarded`], which does what
//!   kube's `DeserializeGuard` does, as linkerd's `guarded_watch` uses it,
//!   in one pass over the object's text instead of three);
//! - drops `managedFields`, the last-applied annotation and the long status
//!   lists before caching, which are most of an object's bytes and never
//!   read (the lists are kept as digests beside the stored copy:
//!   [`Stored`], [`super::cached_status`]);
//! - is scoped by `--watch-namespace`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::channel::mpsc;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource};
use tokio::task::JoinHandle;

use super::guarded::Guarded;
use super::{Affected, Index, Indexed, Routed, Stored, WatchMetrics};
use crate::api::{AccessReview, ApiKey, Group, Member, Organization};

/// Which namespaces are watched, for every component of the process.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct WatchArgs {
    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "ORGACCESS_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
}

impl WatchArgs {
    pub fn scope(&self) -> Scope {
        Scope(self.watch_namespace.clone())
    }
}

/// Which namespaces are watched.
#[derive(Clone, Debug, Default)]
pub struct Scope(pub Option<String>);

impl Scope {
    pub fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match &self.0 {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
}

/// Where routed changes go: one channel of object references per kind
/// (the controllers' `reconcile_on`).
pub struct Senders {
    pub organizations: mpsc::UnboundedSender<ObjectRef<Stored<Organization>>>,
    pub groups: mpsc::UnboundedSender<ObjectRef<Stored<Group>>>,
    pub members: mpsc::UnboundedSender<ObjectRef<Stored<Member>>>,
    pub api_keys: mpsc::UnboundedSender<ObjectRef<Stored<ApiKey>>>,
}

/// The receiving ends of [`Senders`].
pub struct Triggers {
    pub organizations: mpsc::UnboundedReceiver<ObjectRef<Stored<Organization>>>,
    pub groups: mpsc::UnboundedReceiver<ObjectRef<Stored<Group>>>,
    pub members: mpsc::UnboundedReceiver<ObjectRef<Stored<Member>>>,
    pub api_keys: mpsc::UnboundedReceiver<ObjectRef<Stored<ApiKey>>>,
}

pub fn channels() -> (Senders, Triggers) {
    let (organizations, o) = mpsc::unbounded();
    let (groups, g) = mpsc::unbounded();
    let (members, m) = mpsc::unbounded();
    let (api_keys, k) = mpsc::unbounded();
    (
        Senders {
            organizations,
            groups,
            members,
            api_keys,
        },
        Triggers {
            organizations: o,
            groups: g,
            members: m,
            api_keys: k,
        },
    )
}

impl Senders {
    fn send(&self, index: &Index, namespace: &str, affected: &Affected) {
        if affected.organization {
            // One organization per namespace: the route names no organization.
            if let Some(org) = &index.namespace(namespace).state.org {
                let _ = self
                    .organizations
                    .unbounded_send(ObjectRef::new(&org.name).within(namespace));
            }
        }
        for g in &affected.groups {
            let _ = self
                .groups
                .unbounded_send(ObjectRef::new(g).within(namespace));
        }
        for m in &affected.members {
            let _ = self
                .members
                .unbounded_send(ObjectRef::new(m).within(namespace));
        }
        for k in &affected.api_keys {
            let _ = self
                .api_keys
                .unbounded_send(ObjectRef::new(k).within(namespace));
        }
    }
}

/// The objects as the controllers look them up ([`Stored`]): lean copies
/// (no labels or annotations; Members and Groups without spec, which the
/// index's definitions hold), with their written status (trimmed, its
/// digests beside it).
#[derive(Clone)]
pub struct Stores {
    pub organizations: Store<Stored<Organization>>,
    pub groups: Store<Stored<Group>>,
    pub members: Store<Stored<Member>>,
    pub api_keys: Store<Stored<ApiKey>>,
    /// AccessReviews: records nothing reconciles (the index holds their
    /// definitions; this store their metadata).
    pub access_reviews: Store<Stored<AccessReview>>,
}

/// The process's caches: the index, the stores, and where changes are routed.
#[derive(Clone)]
pub struct Caches {
    pub index: Arc<Index>,
    pub stores: Stores,
    /// What the watches count (register once per process: `register_metrics`).
    metrics: WatchMetrics,
    router: Arc<Mutex<Option<Senders>>>,
    _tasks: Arc<TaskGuard>,
}

/// Stops the watches when the last handle to the caches goes.
struct TaskGuard(Vec<JoinHandle<()>>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl Caches {
    /// Starts the five watches. Call inside a tokio runtime.
    pub fn start(client: &Client, scope: &Scope) -> Caches {
        let index = Arc::new(Index::new());
        let router: Arc<Mutex<Option<Senders>>> = Arc::default();
        let metrics = WatchMetrics::default();
        let m = &metrics;
        let (organizations, t1) = watch::<Organization>(client, scope, &index, &router, m);
        let (groups, t2) = watch::<Group>(client, scope, &index, &router, m);
        let (members, t3) = watch::<Member>(client, scope, &index, &router, m);
        let (api_keys, t4) = watch::<ApiKey>(client, scope, &index, &router, m);
        let (access_reviews, t5) = watch::<AccessReview>(client, scope, &index, &router, m);
        Caches {
            index,
            stores: Stores {
                organizations,
                groups,
                members,
                api_keys,
                access_reviews,
            },
            metrics,
            router,
            _tasks: Arc::new(TaskGuard(vec![t1, t2, t3, t4, t5])),
        }
    }

    /// Registers what the watches count ([`WatchMetrics`]) in the
    /// process's registry. Call once.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// Every kind has been listed once.
    pub fn synced(&self) -> bool {
        self.index.synced()
    }

    pub async fn wait_until_synced(&self) {
        while !self.synced() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Routes every later change to `senders`, and everything cached now (a
    /// controller that starts leading reconciles every object once).
    pub fn route_to(&self, senders: Senders) {
        let mut router = self.router.lock().unwrap_or_else(|e| e.into_inner());
        for namespace in self.index.namespaces() {
            let everything = Affected::everything(&self.index.namespace(&namespace));
            senders.send(&self.index, &namespace, &everything);
        }
        *router = Some(senders);
    }

    /// Routes everything cached to the controllers again, if they run: the
    /// periodic resync (each object looked at even when nothing changed),
    /// one pass over the index instead of a timer per object.
    pub fn resync(&self) {
        let router = self.router.lock().unwrap_or_else(|e| e.into_inner());
        let Some(senders) = router.as_ref() else {
            return;
        };
        for namespace in self.index.namespaces() {
            let everything = Affected::everything(&self.index.namespace(&namespace));
            senders.send(&self.index, &namespace, &everything);
        }
    }

    /// Stops routing (the controllers stopped).
    pub fn stop_routing(&self) {
        *self.router.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A watch event of a guarded object, or `None` for an object that did not
/// deserialize (skipped, counted, with a warning naming it).
fn unguard<K: Indexed>(
    event: watcher::Event<Guarded<K>>,
    metrics: &WatchMetrics,
) -> Option<watcher::Event<K>> {
    let valid = |obj: Guarded<K>| match obj.0 {
        Ok(o) => Some(o),
        Err(invalid) => {
            metrics.skipped(&K::kind(&()));
            tracing::warn!(
                kind = %K::kind(&()),
                namespace = invalid.metadata.namespace.as_deref().unwrap_or(""),
                name = invalid.metadata.name.as_deref().unwrap_or(""),
                error = %invalid.error,
                "skipping an object that does not deserialize"
            );
            None
        }
    };
    Some(match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(valid(o)?),
        watcher::Event::Delete(o) => watcher::Event::Delete(valid(o)?),
        watcher::Event::InitApply(o) => watcher::Event::InitApply(valid(o)?),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
    })
}

/// What nothing reads and is much of an object's bytes: managed fields
/// and the last-applied annotation.
fn strip<K: Indexed>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// One event as the store keeps it: the index has read the full object
/// first, so the store's copy drops what the index holds and keeps its
/// status trimmed ([`Stored::keep`]).
fn kept<K: Indexed>(event: watcher::Event<K>) -> watcher::Event<Stored<K>> {
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(Stored::keep(o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(Stored::keep(o)),
        watcher::Event::InitApply(o) => watcher::Event::InitApply(Stored::keep(o)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

fn watch<K: Indexed>(
    client: &Client,
    scope: &Scope,
    index: &Arc<Index>,
    router: &Arc<Mutex<Option<Senders>>>,
    metrics: &WatchMetrics,
) -> (Store<Stored<K>>, JoinHandle<()>) {
    let (reader, mut writer) = reflector::store();
    let guarded: Api<Guarded<K>> = scope.api(client);
    let stream = watcher(guarded, watcher::Config::default().any_semantic())
        .default_backoff()
        .filter_map({
            let metrics = metrics.clone();
            move |event| {
                futures::future::ready(match event {
                    Ok(e) => unguard(e, &metrics).map(Ok),
                    Err(e) => Some(Err(e)),
                })
            }
        })
        .modify(strip::<K>);
    let (index, router, metrics) = (index.clone(), router.clone(), metrics.clone());
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut routed: Routed = Vec::new();
        // The index first (it reads the whole definition), then the store
        // (the lean copy the controllers look objects up in); both before
        // anything is routed.
        let mut apply = |event: Result<watcher::Event<K>, watcher::Error>, routed: &mut Routed| {
            match event {
                Ok(e) => {
                    routed.extend(index.apply_event(&e));
                    writer.apply_watcher_event(&kept(e));
                }
                Err(e) => {
                    metrics.failed(&K::kind(&()));
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying with backoff")
                }
            }
        };
        while let Some(event) = stream.next().await {
            apply(event, &mut routed);
            // Apply what else is at hand, then prepare the changed namespaces
            // for the next request and route the changes: a reconcile never
            // reads an index older than the change that caused it.
            while let Some(Some(event)) = futures::FutureExt::now_or_never(stream.next()) {
                apply(event, &mut routed);
            }
            let touched: BTreeSet<&str> = routed.iter().map(|(ns, _)| ns.as_str()).collect();
            for ns in touched {
                index.warm(ns);
            }
            if let Some(senders) = router.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                for (ns, affected) in &routed {
                    senders.send(&index, ns, affected);
                }
            }
            routed.clear();
        }
    });
    (reader, task)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::core::error_boundary::InvalidObject;
    use kube::runtime::watcher::Event;
    use prometheus_client::registry::Registry;

    use super::{Guarded, WatchMetrics, unguard};
    use crate::api::Group;

    fn counted(registry: &Registry, series: &str) -> Option<f64> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    /// An object that does not deserialize is left out of the event and
    /// counted for its kind; a valid one passes and counts nothing.
    #[test]
    fn a_skipped_object_is_counted_by_kind() {
        let metrics = WatchMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let skipped = r#"orgaccess_watch_objects_skipped_total{kind="Group"}"#;
        assert_eq!(counted(&registry, skipped), Some(0.0));
        assert_eq!(
            counted(
                &registry,
                r#"orgaccess_watch_failures_total{kind="AccessReview"}"#
            ),
            Some(0.0)
        );

        let invalid = Guarded::<Group>(Err(InvalidObject {
            error: "invalid type: string, expected a sequence".into(),
            metadata: ObjectMeta {
                name: Some("broken".into()),
                namespace: Some("acme".into()),
                ..ObjectMeta::default()
            },
        }));
        assert!(unguard(Event::Apply(invalid.clone()), &metrics).is_none());
        assert!(unguard(Event::InitApply(invalid), &metrics).is_none());
        assert_eq!(counted(&registry, skipped), Some(2.0));

        let group: Group =
            serde_json::from_str(r#"{"metadata":{"name":"ops"},"spec":{}}"#).unwrap();
        let valid = Guarded(Ok(group));
        assert!(matches!(
            unguard(Event::Apply(valid), &metrics),
            Some(Event::Apply(_))
        ));
        assert!(matches!(
            unguard(Event::<Guarded<Group>>::Init, &metrics),
            Some(Event::Init)
        ));
        assert_eq!(counted(&registry, skipped), Some(2.0));
        assert_eq!(
            counted(
                &registry,
                r#"orgaccess_watch_objects_skipped_total{kind="Member"}"#
            ),
            Some(0.0)
        );
    }
}
