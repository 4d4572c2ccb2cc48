//! Shared caches of the four kinds, and a per-namespace snapshot of the
//! privilege state derived from them.
//!
//! Every Member reconcile needs its organization's group privileges. Computing
//! them is linear in the groups, so the result is cached per namespace and
//! dropped whenever a Group, ApiKey or Organization of that namespace changes;
//! member reconciles in between reuse it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::Scope;
use crate::api::{self, ApiKey, Group, Member, Organization};
use crate::core::effective::{Grantees, resolve_grantees};
use crate::core::model::{MemberDef, OrgState};

/// The organization of a namespace without its members, and what it grants.
pub struct Snapshot {
    pub state: OrgState,
    pub grantees: Grantees,
}

#[derive(Clone)]
pub struct Stores {
    pub orgs: Store<Organization>,
    pub groups: Store<Group>,
    pub members: Store<Member>,
    pub keys: Store<ApiKey>,
    snapshots: Arc<Mutex<HashMap<String, Arc<Snapshot>>>>,
}

/// Something changed in the caches: which object, of which kind.
enum Change {
    Organization(Arc<Organization>),
    Group(Arc<Group>),
    Member(Arc<Member>),
    ApiKey(Arc<ApiKey>),
    Resynced,
}

/// Reconcile requests for each controller, sent after the caches are updated,
/// so a reconcile never reads a cache older than the change that caused it.
pub struct Triggers {
    pub organizations: mpsc::UnboundedReceiver<ObjectRef<Organization>>,
    pub groups: mpsc::UnboundedReceiver<ObjectRef<Group>>,
    pub members: mpsc::UnboundedReceiver<ObjectRef<Member>>,
    pub api_keys: mpsc::UnboundedReceiver<ObjectRef<ApiKey>>,
}

struct Senders {
    organizations: mpsc::UnboundedSender<ObjectRef<Organization>>,
    groups: mpsc::UnboundedSender<ObjectRef<Group>>,
    members: mpsc::UnboundedSender<ObjectRef<Member>>,
    api_keys: mpsc::UnboundedSender<ObjectRef<ApiKey>>,
}

/// A reflector over all namespaces whose events are turned into [`Change`]s.
fn reflect<K>(
    client: &Client,
    scope: &Scope,
    wrap: fn(Arc<K>) -> Change,
) -> (Store<K>, impl Stream<Item = Change> + Send + 'static)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(scope.api::<K>(client), watcher::Config::default().any_semantic()))
        .default_backoff()
        .filter_map(move |event| async move {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => Some(wrap(Arc::new(o))),
                Ok(watcher::Event::InitDone) => Some(Change::Resynced),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, kind = %K::kind(&()), "watch error; retrying with backoff");
                    None
                }
            }
        });
    (reader, stream)
}

fn ns_of<K: ResourceExt>(o: &K) -> String {
    o.namespace().unwrap_or_default()
}

impl Stores {
    /// Starts the four reflectors. The returned future drives them and routes
    /// every change to the objects it affects.
    pub fn start(
        client: &Client,
        scope: &Scope,
    ) -> (
        Stores,
        Triggers,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (orgs, o) = reflect::<Organization>(client, scope, Change::Organization);
        let (groups, g) = reflect::<Group>(client, scope, Change::Group);
        let (keys, k) = reflect::<ApiKey>(client, scope, Change::ApiKey);
        let (members, m) = reflect::<Member>(client, scope, Change::Member);
        let stores = Stores {
            orgs,
            groups,
            members,
            keys,
            snapshots: Arc::default(),
        };
        let (organizations_tx, organizations) = mpsc::unbounded();
        let (groups_tx, groups_rx) = mpsc::unbounded();
        let (members_tx, members_rx) = mpsc::unbounded();
        let (api_keys_tx, api_keys) = mpsc::unbounded();
        let senders = Senders {
            organizations: organizations_tx,
            groups: groups_tx,
            members: members_tx,
            api_keys: api_keys_tx,
        };
        let router = stores.clone();
        let driver = async move {
            let all = futures::stream::select_all([o.boxed(), g.boxed(), k.boxed(), m.boxed()]);
            all.for_each(|change| {
                router.route(&senders, change);
                async {}
            })
            .await;
        };
        let triggers = Triggers {
            organizations,
            groups: groups_rx,
            members: members_rx,
            api_keys,
        };
        (stores, triggers, driver)
    }

    fn invalidate(&self, namespace: Option<&str>) {
        let mut map = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        match namespace {
            Some(ns) => {
                map.remove(ns);
            }
            None => map.clear(),
        }
    }

    /// Members whose privileges depend on group `name`: invited to it, listed
    /// in it (status, which covers removals), or matching its identity sets.
    fn members_of_group(&self, ns: &str, group: &Group) -> Vec<Arc<Member>> {
        let name = group.name_any();
        self.members_in(ns)
            .into_iter()
            .filter(|m| {
                m.spec.groups.contains(&name)
                    || m.status
                        .as_ref()
                        .is_some_and(|s| s.groups.iter().any(|g| g.group == name))
                    || group
                        .spec
                        .identity_sets
                        .iter()
                        .any(|set| set.matches(&MemberDef::from(m.as_ref())))
            })
            .collect()
    }

    /// Sends reconcile requests for everything a change affects.
    fn route(&self, tx: &Senders, change: Change) {
        let send_org = |ns: &str| {
            if let Some(o) = self.organization_in(ns) {
                let _ = tx
                    .organizations
                    .unbounded_send(ObjectRef::from_obj(o.as_ref()));
            }
        };
        let send_group_and_members = |ns: &str, name: &str| {
            let _ = tx.groups.unbounded_send(ObjectRef::new(name).within(ns));
            if let Some(g) = self.groups.get(&ObjectRef::new(name).within(ns)) {
                for m in self.members_of_group(ns, &g) {
                    let _ = tx.members.unbounded_send(ObjectRef::from_obj(m.as_ref()));
                }
            }
        };
        let send_access = |ns: &str, access: &[crate::core::model::AccessEntry]| {
            for entry in access {
                if let Some(g) = &entry.group {
                    send_group_and_members(ns, g);
                }
                if let Some(k) = &entry.api_key {
                    let _ = tx.api_keys.unbounded_send(ObjectRef::new(k).within(ns));
                }
            }
        };
        // Groups and keys that name `group` or `key` (access lists, the
        // source of a duplicate): their ResolvedRefs and Ready follow it.
        let send_referrers = |ns: &str, group: Option<&str>, key: Option<&str>| {
            let names = |access: &[crate::core::model::AccessEntry]| {
                access.iter().any(|e| {
                    (group.is_some() && e.group.as_deref() == group)
                        || (key.is_some() && e.api_key.as_deref() == key)
                })
            };
            for g in self.groups.state() {
                if g.namespace().as_deref() == Some(ns)
                    && (names(&g.spec.access)
                        || (group.is_some() && g.spec.duplicate_of.as_deref() == group))
                {
                    let _ = tx.groups.unbounded_send(ObjectRef::from_obj(g.as_ref()));
                }
            }
            for k in self.keys.state() {
                if k.namespace().as_deref() == Some(ns) && names(&k.spec.access) {
                    let _ = tx.api_keys.unbounded_send(ObjectRef::from_obj(k.as_ref()));
                }
            }
        };
        match change {
            Change::Resynced => {
                self.invalidate(None);
                for o in self.orgs.state() {
                    let _ = tx
                        .organizations
                        .unbounded_send(ObjectRef::from_obj(o.as_ref()));
                }
            }
            Change::Organization(o) => {
                let ns = ns_of(o.as_ref());
                self.invalidate(Some(&ns));
                let _ = tx
                    .organizations
                    .unbounded_send(ObjectRef::from_obj(o.as_ref()));
                // The invitation lifetime and declared resources concern everyone.
                for m in self.members_in(&ns) {
                    let _ = tx.members.unbounded_send(ObjectRef::from_obj(m.as_ref()));
                }
            }
            Change::Group(g) => {
                let ns = ns_of(g.as_ref());
                self.invalidate(Some(&ns));
                for m in self.members_of_group(&ns, &g) {
                    let _ = tx.members.unbounded_send(ObjectRef::from_obj(m.as_ref()));
                }
                send_access(&ns, &g.spec.access);
                send_referrers(&ns, Some(&g.name_any()), None);
                // Groups whose access list names this one list it in status.
                send_org(&ns);
            }
            Change::ApiKey(k) => {
                let ns = ns_of(k.as_ref());
                self.invalidate(Some(&ns));
                send_access(&ns, &k.spec.access);
                send_referrers(&ns, None, Some(&k.name_any()));
                send_org(&ns);
            }
            Change::Member(m) => {
                let ns = ns_of(m.as_ref());
                let def = MemberDef::from(m.as_ref());
                let mut groups: Vec<String> = m.spec.groups.clone();
                if let Some(s) = &m.status {
                    groups.extend(s.groups.iter().map(|g| g.group.clone()));
                }
                for g in self.groups.state() {
                    if g.namespace().as_deref() == Some(ns.as_str())
                        && g.spec.identity_sets.iter().any(|s| s.matches(&def))
                    {
                        groups.push(g.name_any());
                    }
                }
                groups.sort();
                groups.dedup();
                for g in groups {
                    let _ = tx.groups.unbounded_send(ObjectRef::new(&g).within(&ns));
                }
                send_org(&ns);
            }
        }
    }

    pub async fn wait_until_ready(&self) -> anyhow::Result<()> {
        self.orgs.wait_until_ready().await?;
        self.groups.wait_until_ready().await?;
        self.members.wait_until_ready().await?;
        self.keys.wait_until_ready().await?;
        Ok(())
    }

    /// The namespace's snapshot, computed once per change of its groups, keys or organization.
    pub fn snapshot(&self, namespace: &str) -> Arc<Snapshot> {
        if let Some(s) = self
            .snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(namespace)
        {
            return s.clone();
        }
        let orgs = self.orgs.state();
        let groups = self.groups.state();
        let keys = self.keys.state();
        let state = api::org_state(
            namespace,
            orgs.iter().map(|o| o.as_ref()),
            groups.iter().map(|g| g.as_ref()),
            std::iter::empty(),
            keys.iter().map(|k| k.as_ref()),
        );
        let grantees = resolve_grantees(&state);
        let snapshot = Arc::new(Snapshot { state, grantees });
        self.snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(namespace.to_string(), snapshot.clone());
        snapshot
    }

    pub fn members_in(&self, namespace: &str) -> Vec<Arc<Member>> {
        self.members
            .state()
            .into_iter()
            .filter(|m| m.namespace().as_deref() == Some(namespace))
            .collect()
    }

    pub fn organization_in(&self, namespace: &str) -> Option<Arc<Organization>> {
        self.orgs
            .state()
            .into_iter()
            .find(|o| o.namespace().as_deref() == Some(namespace))
    }
}
