//! How watch events update the [`Index`]: one object at a time
//! ([`Index::apply`], [`Index::delete`]), or a kind's whole relisting
//! ([`Index::apply_event`]: `Init` .. `InitDone` replaces the kind in every
//! namespace), each answering what it affects ([`super::route`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;
use kube::runtime::watcher;

use super::{Affected, Index, Indexed, Inner, Routed};
use crate::core::change::Def;
use crate::core::model::Kind;

/// Objects listed since a watcher's `Init`, by namespace.
pub(super) type Relist = BTreeMap<String, Vec<Arc<dyn ErasedObject>>>;

/// Adds the object itself to what a change affects.
fn with_self(mut affected: Affected, kind: Kind, name: String) -> Affected {
    match kind {
        Kind::Organization => affected.organization = true,
        Kind::Group => {
            affected.groups.insert(name);
        }
        Kind::Member => {
            affected.members.insert(name);
        }
        Kind::ApiKey => {
            affected.api_keys.insert(name);
        }
        // A record: nothing reconciles it.
        Kind::AccessReview => {}
    }
    affected
}

/// An object of any of the four kinds (for relist buffers).
pub(super) trait ErasedObject: Send + Sync {
    fn name(&self) -> String;
    fn def(&self) -> Def;
    fn reference(&self) -> Option<ObjectReference>;
    fn stale(&self) -> bool;
}

impl<K: Indexed> ErasedObject for K {
    fn name(&self) -> String {
        self.name_any()
    }
    fn def(&self) -> Def {
        Indexed::def(self)
    }
    fn reference(&self) -> Option<ObjectReference> {
        Indexed::reference(self)
    }
    fn stale(&self) -> bool {
        Indexed::stale(self)
    }
}

impl Index {
    /// Records an object's key digests (ApiKeys only).
    fn record_digests<K: Indexed>(&self, obj: &K, present: bool) {
        if K::KIND != Kind::ApiKey {
            return;
        }
        let Some(ns) = obj.meta().namespace.as_deref() else {
            return;
        };
        let (digests, last_used) = if present {
            (obj.digests(), obj.last_used())
        } else {
            (None, None)
        };
        let name = obj.name_any();
        let mut keys = self.lock_keys();
        let entry = keys.entry(ns.to_string()).or_default();
        entry.set(&name, digests);
        entry.set_last_used(&name, last_used);
        if entry.is_empty() {
            keys.remove(ns);
        }
    }

    /// After a relist of ApiKeys, forgets the digests of keys not listed.
    fn forget_unlisted_digests(&self, listed: &Relist) {
        let mut keys = self.lock_keys();
        keys.retain(|ns, entry| {
            let names: BTreeSet<String> = listed
                .get(ns)
                .map(|objs| objs.iter().map(|o| o.name()).collect())
                .unwrap_or_default();
            let before = entry.digests.len();
            entry.digests.retain(|n, _| names.contains(n));
            entry.last_used.retain(|n, _| names.contains(n));
            if entry.digests.len() != before {
                entry.rebuild();
            }
            !entry.is_empty()
        });
    }

    /// Adds or replaces one object; answers what it affects.
    pub fn apply<K: Indexed>(&self, obj: &K) -> Affected {
        self.record_digests(obj, true);
        let Some(ns) = obj.meta().namespace.as_deref() else {
            return Affected::default();
        };
        let affected = self.lock().put(
            ns,
            K::KIND,
            &obj.name_any(),
            Some(obj.def()),
            obj.reference(),
        );
        if obj.stale() {
            return with_self(affected, K::KIND, obj.name_any());
        }
        affected
    }

    /// Removes one object; answers what it affects.
    pub fn delete<K: Indexed>(&self, obj: &K) -> Affected {
        self.record_digests(obj, false);
        let Some(ns) = obj.meta().namespace.as_deref() else {
            return Affected::default();
        };
        self.lock().put(ns, K::KIND, &obj.name_any(), None, None)
    }

    /// Applies one watcher event and answers what it affects, by namespace.
    /// A relist (`Init` .. `InitDone`) replaces the kind's objects in every
    /// namespace at once, and affects what differs from before (everything,
    /// the first time).
    pub fn apply_event<K: Indexed>(&self, event: &watcher::Event<K>) -> Routed {
        let slot = K::KIND as usize;
        let one = |obj: &K, affected: Affected| {
            obj.meta()
                .namespace
                .clone()
                .map(|ns| (ns, affected))
                .into_iter()
                .collect()
        };
        match event {
            watcher::Event::Apply(obj) => one(obj, self.apply(obj)),
            watcher::Event::Delete(obj) => one(obj, self.delete(obj)),
            watcher::Event::Init => {
                self.lock().relist[slot] = Some(BTreeMap::new());
                Vec::new()
            }
            watcher::Event::InitApply(obj) => {
                self.record_digests(obj, true);
                let Some(ns) = obj.meta().namespace.clone() else {
                    return Vec::new();
                };
                let mut inner = self.lock();
                let buffer = inner.relist[slot].get_or_insert_with(BTreeMap::new);
                buffer
                    .entry(ns)
                    .or_default()
                    .push(Arc::new(obj.clone()) as Arc<dyn ErasedObject>);
                Vec::new()
            }
            watcher::Event::InitDone => {
                let mut inner = self.lock();
                let listed = inner.relist[slot].take().unwrap_or_default();
                if K::KIND == Kind::ApiKey {
                    self.forget_unlisted_digests(&listed);
                }
                let mut names: Vec<String> = inner.namespaces.keys().cloned().collect();
                names.extend(listed.keys().cloned());
                names.sort();
                names.dedup();
                let mut routed = Vec::new();
                for namespace in names {
                    let objects = listed
                        .get(&namespace)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    let affected = relist(&mut inner, &namespace, K::KIND, objects);
                    if !affected.is_empty() {
                        routed.push((namespace, affected));
                    }
                }
                inner.synced[slot] = true;
                routed
            }
        }
    }
}

/// Replaces one kind's objects in a namespace with a fresh listing: what
/// disappeared is removed, the rest applied (a no-op where unchanged).
fn relist(
    inner: &mut Inner,
    namespace: &str,
    kind: Kind,
    objects: &[Arc<dyn ErasedObject>],
) -> Affected {
    let listed: BTreeSet<String> = objects.iter().map(|o| o.name()).collect();
    let gone: Vec<String> = inner
        .namespaces
        .get(namespace)
        .map(|ns| ns.names(kind))
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !listed.contains(n))
        .collect();
    let mut affected = Affected::default();
    for name in gone {
        affected.extend(inner.put(namespace, kind, &name, None, None));
    }
    for obj in objects {
        let mut one = inner.put(
            namespace,
            kind,
            &obj.name(),
            Some(obj.def()),
            obj.reference(),
        );
        if obj.stale() {
            one = with_self(one, kind, obj.name());
        }
        affected.extend(one);
    }
    affected
}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher;

    use crate::api::Group;
    use crate::index::Index;
    use crate::index::fixtures::{fixture, group, names, org};

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

    /// A relist after a watch gap routes what changed during the gap only.
    #[test]
    fn a_relist_routes_only_what_changed() {
        let (index, mut groups, _) = fixture();
        // Reconciled already (an object whose status lags is always routed).
        for g in &mut groups {
            g.status = Some(crate::api::GroupStatus {
                observed_generation: Some(1),
                ..Default::default()
            });
        }
        let mut edited = groups[2].clone();
        edited.spec.display_name = Some("Lonely".into());
        index.apply_event::<Group>(&watcher::Event::Init);
        for g in [&groups[0], &groups[1], &edited] {
            index.apply_event(&watcher::Event::InitApply(g.clone()));
        }
        let routed = index.apply_event::<Group>(&watcher::Event::InitDone);
        assert_eq!(routed.len(), 1);
        assert_eq!(routed[0].1.groups, names(&["lonely"]));
    }
}
