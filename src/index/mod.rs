//! One index of every organization, shared by the webhook, the controller
//! and the decision service: one [`Namespace`] snapshot per namespace, kept
//! up to date from one watch per kind ([`watch`]).
//!
//! Each snapshot holds the namespace's [`OrgState`], built with the same
//! conversions as [`crate::api::org_state`] (`OrgDef::from(&Organization)`,
//! ...) one object at a time, so neither an admission request nor a
//! reconcile walks every object of the cluster. What the rules derive from a
//! state (the grantees' privileges, each requester's mapped members) is
//! computed on first use and kept until the namespace changes. Applying an
//! event answers which objects it affects ([`route`]), which is what the
//! controller reconciles.
//!
//! Snapshots are shared as `Arc`s: a reader takes one and works without a
//! lock; a change to a namespace edits its snapshot in place when no reader
//! holds it, and copies it otherwise (copy on write).
//!
//! The parts: the snapshot ([`namespace`], its requester cache
//! [`requesters`], its decision facts `decisions`), the four kinds as the
//! index reads them ([`indexed`]), how events update it ([`update`]) and
//! what they affect ([`route`]), how a watch reads each object
//! ([`guarded`]), the API key digests kept beside the
//! snapshots ([`keys`]), and the stores' copies ([`stored`], with what they
//! keep of a status, [`cached_status`]).

/// The kind half of `kube::Resource` for a wrapper of an object `K`
/// (`Guarded<K>`, `Stored<K>`): its kind, group, version, plural and scope
/// are `K`'s. The wrapper writes `meta` and `meta_mut` itself.
macro_rules! kind_of_k {
    () => {
        type DynamicType = K::DynamicType;
        type Scope = K::Scope;

        fn kind(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
            K::kind(dt)
        }
        fn group(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
            K::group(dt)
        }
        fn version(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
            K::version(dt)
        }
        fn plural(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
            K::plural(dt)
        }
    };
}

pub mod cached_status;
mod decisions;
#[cfg(test)]
mod fixtures;
mod guarded;
mod indexed;
mod keys;
mod lookups;
mod namespace;
mod requesters;
pub mod route;
pub mod stored;
mod update;
pub mod watch;
mod watch_metrics;

pub use guarded::Guarded;
pub use indexed::{Indexed, key_digests, reference};
pub use namespace::Namespace;
pub use requesters::requester_cache_usage;
pub use route::Affected;
pub use stored::Stored;
pub use watch_metrics::WatchMetrics;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;

use crate::core::change::Def;
use crate::core::decision::KeyTable;
use crate::core::model::Kind;
use keys::NamespaceKeys;
use update::Relist;

#[derive(Default)]
struct Inner {
    namespaces: HashMap<String, Arc<Namespace>>,
    /// Per kind: objects listed since the watcher's last `Init`, by namespace.
    relist: [Option<Relist>; Kind::ALL.len()],
    /// Per kind: a full listing has been applied.
    synced: [bool; Kind::ALL.len()],
}

impl Inner {
    /// Applies one change to a namespace's snapshot (copying it if a reader
    /// holds it) and drops the namespace once it is empty.
    fn put(
        &mut self,
        namespace: &str,
        kind: Kind,
        name: &str,
        def: Option<Def>,
        reference: Option<ObjectReference>,
    ) -> Affected {
        let Some(entry) = self.namespaces.get_mut(namespace) else {
            if def.is_none() {
                return Affected::default();
            }
            let mut ns = Namespace::default();
            let affected = ns.put(kind, name, def, reference);
            self.namespaces.insert(namespace.to_string(), Arc::new(ns));
            return affected;
        };
        let affected = Arc::make_mut(entry).put(kind, name, def, reference);
        if entry.is_empty() {
            self.namespaces.remove(namespace);
        }
        affected
    }
}

/// What an event changed: the namespace, and the objects there to reconcile.
pub type Routed = Vec<(String, Affected)>;

/// Every namespace's snapshot.
#[derive(Default)]
pub struct Index {
    inner: Mutex<Inner>,
    /// API key digests by namespace, from the ApiKeys' status (the values
    /// stay in Secrets). Apart from the snapshots: a status write changes
    /// no definition, so it must not invalidate what the rules derived.
    keys: Mutex<HashMap<String, NamespaceKeys>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("synced", &self.lock().synced)
            .finish_non_exhaustive()
    }
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The snapshot of one namespace (empty if nothing is there).
    pub fn namespace(&self, namespace: &str) -> Arc<Namespace> {
        self.lock()
            .namespaces
            .get(namespace)
            .cloned()
            .unwrap_or_default()
    }

    /// The namespaces that hold anything.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().namespaces.keys().cloned().collect();
        names.sort();
        names
    }

    /// Objects held, per kind (Organization, Group, Member, ApiKey).
    pub fn counts(&self) -> [usize; 4] {
        let inner = self.lock();
        let mut out = [0; 4];
        for ns in inner.namespaces.values() {
            out[0] += usize::from(ns.state.org.is_some());
            out[1] += ns.state.groups.len();
            out[2] += ns.state.members.len();
            out[3] += ns.state.api_keys.len();
        }
        out
    }

    /// The digests of a namespace's API keys, for `verify_key`.
    pub fn key_table(&self, namespace: &str) -> Arc<KeyTable> {
        self.lock_keys()
            .get(namespace)
            .map(|k| k.table.clone())
            .unwrap_or_default()
    }

    /// When the key's status (as last watched) says it was last used
    /// (`status.lastUsedAt`).
    pub fn last_used(&self, namespace: &str, key: &str) -> Option<Timestamp> {
        self.lock_keys().get(namespace)?.last_used.get(key).copied()
    }

    /// Whether an ApiKey of this name is indexed in the namespace.
    pub fn has_api_key(&self, namespace: &str, key: &str) -> bool {
        self.lock()
            .namespaces
            .get(namespace)
            .is_some_and(|ns| ns.state.api_keys.contains_key(key))
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, NamespaceKeys>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All four kinds have been listed once.
    pub fn synced(&self) -> bool {
        self.lock().synced.iter().all(|s| *s)
    }

    /// Marks every kind as listed, for an index filled by hand (tests, benchmarks).
    pub fn mark_synced(&self) {
        self.lock().synced = [true; Kind::ALL.len()];
    }

    /// Computes the grantees' privileges of a namespace now, off the request
    /// path (the watchers call this once the events at hand are applied, so
    /// the next request after a change finds them ready).
    pub fn warm(&self, namespace: &str) {
        let ns = self.namespace(namespace);
        if !ns.is_empty() {
            ns.grantees();
        }
    }
}
