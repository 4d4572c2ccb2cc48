//! The webhook's view of every organization: one [`Namespace`] snapshot per
//! namespace, kept up to date from the four watchers' events.
//!
//! Each snapshot holds the namespace's [`OrgState`], built with the same
//! conversions as [`crate::api::org_state`] (`OrgDef::from(&Organization)`,
//! ...) one object at a time, so an admission request never walks every
//! object of the cluster. What the rules derive from a state (the grantees'
//! privileges, each requester's mapped members) is computed on first use and
//! kept until the namespace changes.
//!
//! Snapshots are shared as `Arc`s: a request takes one and works without a
//! lock; a change to a namespace edits its snapshot in place when no request
//! holds it, and copies it otherwise (copy on write).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::api::{ApiKey, Group, Member, Organization};
use crate::core::effective::{Grantees, RequesterView, requester_view, resolve_grantees};
use crate::core::model::{ApiKeyDef, GroupDef, MemberDef, OrgDef, OrgState};
use crate::core::privilege::{intern_names, outside_request_scope, spec_names};

/// Requester views by (user name, groups).
type RequesterCache = HashMap<(String, Vec<String>), Arc<RequesterView>>;
/// Objects listed since a watcher's `Init`, by namespace.
type Relist = BTreeMap<String, Vec<Arc<dyn ErasedObject>>>;

/// Requester views kept per namespace before the cache is cleared.
const REQUESTER_CACHE: usize = 4096;

/// One organization as the webhook sees it.
#[derive(Debug, Default)]
pub struct Namespace {
    pub state: OrgState,
    /// The Organization object (for Events regarding it), if there is one.
    pub organization: Option<ObjectReference>,
    grantees: OnceLock<Arc<Grantees>>,
    requesters: Mutex<RequesterCache>,
}

impl Clone for Namespace {
    fn clone(&self) -> Self {
        // Derived data is dropped: a copy is made only to be changed.
        Namespace {
            state: self.state.clone(),
            organization: self.organization.clone(),
            ..Namespace::default()
        }
    }
}

impl Namespace {
    pub fn new(state: OrgState) -> Self {
        Namespace {
            state,
            ..Namespace::default()
        }
    }

    /// Privileges of every group and API key ([`resolve_grantees`]), computed once.
    pub fn grantees(&self) -> Arc<Grantees> {
        // Kept with the cache: its ids must outlive the request computing it.
        self.grantees
            .get_or_init(|| outside_request_scope(|| Arc::new(resolve_grantees(&self.state))))
            .clone()
    }

    /// The members a Kubernetes identity maps to, and their merged privileges
    /// ([`requester_view`]), computed once per identity. Privileges do not
    /// depend on the time (only accepted members hold any), so a cached view
    /// stays right until the namespace changes.
    pub fn requester(&self, username: &str, groups: &[String]) -> Arc<RequesterView> {
        let key = (username.to_string(), groups.to_vec());
        if let Some(v) = self.lock_requesters().get(&key) {
            return v.clone();
        }
        let view = outside_request_scope(|| {
            Arc::new(requester_view(
                &self.state,
                &self.grantees(),
                username,
                groups,
                Timestamp::now(),
            ))
        });
        let mut cache = self.lock_requesters();
        if cache.len() >= REQUESTER_CACHE {
            cache.clear();
        }
        cache.insert(key, view.clone());
        view
    }

    fn lock_requesters(&self) -> std::sync::MutexGuard<'_, RequesterCache> {
        self.requesters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops what was derived from the state. The grantees' privileges come
    /// from groups and API keys only (and the Organization's settings), so a
    /// Member change keeps them; every change can remap requesters.
    fn invalidate(&mut self, slot: usize) {
        if slot != <Member as Indexed>::SLOT {
            self.grantees = OnceLock::new();
        }
        self.requesters = Mutex::default();
    }
}

/// The four kinds, as the index stores them.
pub trait Indexed: Resource<DynamicType = ()> + Clone + Send + Sync + 'static {
    const SLOT: usize;
    fn insert(&self, ns: &mut Namespace);
    fn remove(&self, ns: &mut Namespace);
}

impl Indexed for Organization {
    const SLOT: usize = 0;
    fn insert(&self, ns: &mut Namespace) {
        // One organization per namespace (admission refuses a second); should
        // one slip in while the webhook was down, keep judging by the first.
        let def = OrgDef::from(self);
        if ns.state.org.as_ref().is_none_or(|o| o.name == def.name) {
            ns.state.org = Some(def);
            ns.organization = Some(reference(self));
        }
    }
    fn remove(&self, ns: &mut Namespace) {
        if ns.organization.as_ref().and_then(|r| r.name.as_deref()) == self.meta().name.as_deref() {
            ns.state.org = None;
            ns.organization = None;
        }
    }
}

impl Indexed for Group {
    const SLOT: usize = 1;
    fn insert(&self, ns: &mut Namespace) {
        let def = GroupDef::from(self);
        intern_names(std::iter::once(def.name.as_str()).chain(spec_names(&def.privileges)));
        ns.state.groups.insert(self.name_any(), def);
    }
    fn remove(&self, ns: &mut Namespace) {
        ns.state.groups.remove(&self.name_any());
    }
}

impl Indexed for Member {
    const SLOT: usize = 2;
    fn insert(&self, ns: &mut Namespace) {
        ns.state
            .members
            .insert(self.name_any(), MemberDef::from(self));
    }
    fn remove(&self, ns: &mut Namespace) {
        ns.state.members.remove(&self.name_any());
    }
}

impl Indexed for ApiKey {
    const SLOT: usize = 3;
    fn insert(&self, ns: &mut Namespace) {
        let def = ApiKeyDef::from(self);
        intern_names(std::iter::once(def.name.as_str()).chain(spec_names(&def.privileges)));
        ns.state.api_keys.insert(self.name_any(), def);
    }
    fn remove(&self, ns: &mut Namespace) {
        ns.state.api_keys.remove(&self.name_any());
    }
}

/// A reference to an object, for Events.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: None,
        field_path: None,
    }
}

#[derive(Default)]
struct Inner {
    namespaces: HashMap<String, Arc<Namespace>>,
    /// Per kind: objects listed since the watcher's last `Init`, by namespace.
    relist: [Option<Relist>; 4],
    /// Per kind: a full listing has been applied.
    synced: [bool; 4],
}

/// An object of any of the four kinds (for relist buffers).
trait ErasedObject: Send + Sync {
    fn insert(&self, ns: &mut Namespace);
}

impl<K: Indexed> ErasedObject for K {
    fn insert(&self, ns: &mut Namespace) {
        Indexed::insert(self, ns)
    }
}

/// Every namespace's snapshot.
#[derive(Default)]
pub struct Index {
    inner: Mutex<Inner>,
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

    /// All four kinds have been listed once.
    pub fn synced(&self) -> bool {
        self.lock().synced.iter().all(|s| *s)
    }

    /// Marks every kind as listed, for an index filled by hand (tests, benchmarks).
    pub fn mark_synced(&self) {
        self.lock().synced = [true; 4];
    }

    /// Adds or replaces one object.
    pub fn apply<K: Indexed>(&self, obj: &K) {
        let Some(ns) = obj.meta().namespace.clone() else {
            return;
        };
        let mut inner = self.lock();
        let entry = inner.namespaces.entry(ns).or_default();
        let snapshot = Arc::make_mut(entry);
        obj.insert(snapshot);
        snapshot.invalidate(K::SLOT);
    }

    /// Removes one object.
    pub fn delete<K: Indexed>(&self, obj: &K) {
        let Some(ns) = obj.meta().namespace.as_deref() else {
            return;
        };
        let mut inner = self.lock();
        if let Some(entry) = inner.namespaces.get_mut(ns) {
            let snapshot = Arc::make_mut(entry);
            obj.remove(snapshot);
            snapshot.invalidate(K::SLOT);
        }
    }

    /// Computes the grantees' privileges of a namespace now, off the request
    /// path (the watchers call this once the events at hand are applied, so
    /// the next request after a change finds them ready).
    pub fn warm(&self, namespace: &str) {
        let ns = self.namespace(namespace);
        if !is_empty(&ns.state) {
            ns.grantees();
        }
    }

    /// Applies one watcher event; a relist (`Init` .. `InitDone`) replaces the
    /// kind's objects in every namespace at once. Returns the namespace that
    /// changed (`None`: none, or all of them after a relist).
    pub fn apply_event<K: Indexed>(&self, event: &watcher::Event<K>) -> Option<String> {
        match event {
            watcher::Event::Apply(obj) => {
                self.apply(obj);
                obj.meta().namespace.clone()
            }
            watcher::Event::Delete(obj) => {
                self.delete(obj);
                obj.meta().namespace.clone()
            }
            watcher::Event::Init => {
                self.lock().relist[K::SLOT] = Some(BTreeMap::new());
                None
            }
            watcher::Event::InitApply(obj) => {
                let ns = obj.meta().namespace.clone()?;
                let mut inner = self.lock();
                let buffer = inner.relist[K::SLOT].get_or_insert_with(BTreeMap::new);
                buffer
                    .entry(ns)
                    .or_default()
                    .push(Arc::new(obj.clone()) as Arc<dyn ErasedObject>);
                None
            }
            watcher::Event::InitDone => {
                let mut inner = self.lock();
                let listed = inner.relist[K::SLOT].take().unwrap_or_default();
                let mut names: Vec<String> = inner.namespaces.keys().cloned().collect();
                names.extend(listed.keys().cloned());
                names.sort();
                names.dedup();
                for name in names {
                    let entry = inner.namespaces.entry(name.clone()).or_default();
                    let snapshot = Arc::make_mut(entry);
                    clear_kind::<K>(snapshot);
                    for obj in listed.get(&name).into_iter().flatten() {
                        obj.insert(snapshot);
                    }
                    snapshot.invalidate(K::SLOT);
                }
                inner.namespaces.retain(|_, ns| !is_empty(&ns.state));
                inner.synced[K::SLOT] = true;
                None
            }
        }
    }
}

fn clear_kind<K: Indexed>(ns: &mut Namespace) {
    match K::SLOT {
        0 => {
            ns.state.org = None;
            ns.organization = None;
        }
        1 => ns.state.groups.clear(),
        2 => ns.state.members.clear(),
        _ => ns.state.api_keys.clear(),
    }
}

fn is_empty(s: &OrgState) -> bool {
    s.org.is_none() && s.groups.is_empty() && s.members.is_empty() && s.api_keys.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GroupSpec, OrganizationSpec};
    use crate::core::model::OrgResources;

    fn group(ns: &str, name: &str) -> Group {
        let mut g = Group::new(
            name,
            GroupSpec {
                display_name: None,
                built_in: None,
                template: None,
                privileges: vec![],
                identity_sets: vec![],
                access: vec![],
                duplicate_of: None,
            },
        );
        g.metadata.namespace = Some(ns.into());
        g
    }

    fn org(ns: &str) -> Organization {
        let mut o = Organization::new(
            "org",
            OrganizationSpec {
                display_name: "Org".into(),
                resources: OrgResources::default(),
                invitation_lifetime_days: 31,
            },
        );
        o.metadata.namespace = Some(ns.into());
        o
    }

    #[test]
    fn events_keep_each_namespace_equal_to_org_state() {
        let index = Index::new();
        let groups = [group("a", "g1"), group("a", "g2"), group("b", "g1")];
        let orgs = [org("a")];
        index.apply_event::<Group>(&watcher::Event::Init);
        for g in &groups {
            index.apply_event(&watcher::Event::InitApply(g.clone()));
        }
        index.apply_event::<Group>(&watcher::Event::InitDone);
        index.apply_event(&watcher::Event::Apply(orgs[0].clone()));
        let held = index.namespace("a");
        index.apply_event(&watcher::Event::Delete(groups[1].clone()));
        // The held snapshot is unchanged (copy on write).
        assert_eq!(held.state.groups.len(), 2);
        let a = index.namespace("a");
        let expected = crate::api::org_state("a", &orgs, [&groups[0]], [], []);
        assert_eq!(a.state.org, expected.org);
        assert_eq!(a.state.groups, expected.groups);
        assert_eq!(index.namespace("b").state.groups.len(), 1);
        assert!(!index.synced());

        // A relist replaces the kind everywhere.
        index.apply_event::<Group>(&watcher::Event::Init);
        index.apply_event(&watcher::Event::InitApply(groups[2].clone()));
        index.apply_event::<Group>(&watcher::Event::InitDone);
        assert!(index.namespace("a").state.groups.is_empty());
        assert!(index.namespace("a").state.org.is_some());
        assert_eq!(index.namespace("b").state.groups.len(), 1);
    }
}
