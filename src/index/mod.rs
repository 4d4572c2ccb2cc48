//! One index of every organization, shared by the webhook, the controller
//! and (later) the decision service: one [`Namespace`] snapshot per
//! namespace, kept up to date from one watch per kind ([`watch`]).
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

pub mod cached_status;
mod decisions;
pub mod route;
pub mod watch;

pub use route::Affected;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::api::{ApiKey, Group, GroupSpec, Member, MemberSpec, Organization};
use crate::core::change::Def;
use crate::core::decision::{KeyDigests, KeyTable};
use crate::core::effective::{
    Grantees, RequesterView, SubjectNames, requester_view, resolve_grantees,
};
use crate::core::model::{
    ApiKeyDef, GroupDef, IdentitySet, Kind, MemberDef, MemberIdentity, OrgDef, OrgState, Provider,
};
use crate::core::privilege::{intern_names, outside_request_scope, spec_names};

/// Objects listed since a watcher's `Init`, by namespace.
type Relist = BTreeMap<String, Vec<Arc<dyn ErasedObject>>>;

/// Requester views kept per namespace, at most.
const REQUESTER_CACHE: usize = 4096;
/// Bytes of requester views kept per namespace, at most (an estimate, see
/// [`view_bytes`]). Keys are the relevant part of an identity, so a
/// namespace holds at most one view per user its Members name (plus one for
/// everyone else) per combination of named groups: this bound is reached
/// only by an organization with that many distinct requesters.
const REQUESTER_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// The key of a requester view: a digest of the relevant part of an identity
/// (`None`: a user name no Member names).
fn requester_key(user: Option<&str>, groups: &[&str]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    // Length-prefixed, so no two identities write the same bytes.
    match user {
        Some(u) => {
            h.update([1]);
            h.update((u.len() as u64).to_le_bytes());
            h.update(u.as_bytes());
        }
        None => h.update([0]),
    }
    for g in groups {
        h.update((g.len() as u64).to_le_bytes());
        h.update(g.as_bytes());
    }
    h.finalize().into()
}

/// An estimate of what one cached view costs: its key and slot, its member
/// names and its privileges.
fn view_bytes(v: &RequesterView) -> usize {
    use crate::core::privilege::Grant;
    use std::mem::size_of;
    let slot = size_of::<([u8; 32], (Arc<RequesterView>, usize))>() + 16;
    let members: usize = v
        .members
        .iter()
        .map(|m| size_of::<String>() + m.len())
        .sum();
    let privileges: usize = v
        .privileges
        .iter()
        .map(|(_, g)| size_of::<(crate::core::catalog::DomainId, Grant)>() + 16 * g.resources.len())
        .sum();
    slot + size_of::<RequesterView>() + members + privileges
}

/// What every namespace's requester cache holds, together (for the
/// `orgaccess_requester_cache_*` gauges).
static REQUESTER_USAGE: (AtomicUsize, AtomicUsize) = (AtomicUsize::new(0), AtomicUsize::new(0));

/// Requester views cached by every live snapshot of the process: entries and
/// estimated bytes.
pub fn requester_cache_usage() -> (usize, usize) {
    (
        REQUESTER_USAGE.0.load(Ordering::Relaxed),
        REQUESTER_USAGE.1.load(Ordering::Relaxed),
    )
}

/// Requester views by the digest of the identity's relevant part, bounded in
/// entries and bytes.
#[derive(Debug, Default)]
struct RequesterCache {
    views: HashMap<[u8; 32], (Arc<RequesterView>, usize)>,
    bytes: usize,
}

impl RequesterCache {
    fn insert(&mut self, key: [u8; 32], view: Arc<RequesterView>) {
        let size = view_bytes(&view);
        if size > REQUESTER_CACHE_BYTES || self.views.contains_key(&key) {
            return;
        }
        // Room is made by dropping arbitrary entries: a namespace with more
        // requesters than fit keeps most of them rather than starting over.
        while !self.views.is_empty()
            && (self.views.len() >= REQUESTER_CACHE || self.bytes + size > REQUESTER_CACHE_BYTES)
        {
            let Some(k) = self.views.keys().next().copied() else {
                break;
            };
            if let Some((_, n)) = self.views.remove(&k) {
                self.bytes -= n;
                REQUESTER_USAGE.0.fetch_sub(1, Ordering::Relaxed);
                REQUESTER_USAGE.1.fetch_sub(n, Ordering::Relaxed);
            }
        }
        self.views.insert(key, (view, size));
        self.bytes += size;
        REQUESTER_USAGE.0.fetch_add(1, Ordering::Relaxed);
        REQUESTER_USAGE.1.fetch_add(size, Ordering::Relaxed);
    }
}

impl Drop for RequesterCache {
    fn drop(&mut self) {
        REQUESTER_USAGE
            .0
            .fetch_sub(self.views.len(), Ordering::Relaxed);
        REQUESTER_USAGE.1.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// One organization: its objects' definitions and what is derived from them.
#[derive(Debug, Default)]
pub struct Namespace {
    pub state: OrgState,
    /// The Organization object (for Events regarding it), if there is one.
    pub organization: Option<ObjectReference>,
    /// Members by the groups they are invited to (`spec.groups`), so a group's
    /// members are found without a scan of every member.
    invited: HashMap<String, BTreeSet<String>>,
    grantees: OnceLock<Arc<Grantees>>,
    /// The user and group names the Members list as subjects.
    subjects: OnceLock<Arc<SubjectNames>>,
    requesters: Mutex<RequesterCache>,
    /// What decisions derive per member and API key (`decisions.rs`).
    decisions: decisions::DecisionFacts,
}

impl Clone for Namespace {
    fn clone(&self) -> Self {
        // Derived data is dropped: a copy is made only to be changed.
        Namespace {
            state: self.state.clone(),
            organization: self.organization.clone(),
            invited: self.invited.clone(),
            ..Namespace::default()
        }
    }
}

impl Namespace {
    pub fn new(state: OrgState) -> Self {
        let mut ns = Namespace::default();
        for m in state.members.values() {
            ns.invite(m);
        }
        ns.state = state;
        ns
    }

    /// Privileges of every group and API key ([`resolve_grantees`]), computed once.
    pub fn grantees(&self) -> Arc<Grantees> {
        // Kept with the cache: its ids must outlive the request computing it.
        self.grantees
            .get_or_init(|| outside_request_scope(|| Arc::new(resolve_grantees(&self.state))))
            .clone()
    }

    /// The user and group names this namespace's Members list as subjects
    /// ([`SubjectNames`]), computed once.
    pub fn subject_names(&self) -> Arc<SubjectNames> {
        self.subjects
            .get_or_init(|| Arc::new(SubjectNames::of(&self.state)))
            .clone()
    }

    /// The members a Kubernetes identity maps to, and their merged privileges
    /// ([`requester_view`]), computed once per identity. Privileges do not
    /// depend on the time (only accepted members hold any), so a cached view
    /// stays right until the namespace changes.
    ///
    /// Only the identity's relevant part is read ([`SubjectNames::relevant`]):
    /// the user name if a Member names it, the groups Members name. That part
    /// is the cache's key, as a SHA-256 digest, so neither a long user name
    /// nor a list of a million groups is kept or compared, and every identity
    /// no Member names shares one entry.
    pub fn requester(&self, username: &str, groups: &[String]) -> Arc<RequesterView> {
        let names = self.subject_names();
        let (user, relevant) = names.relevant(username, groups);
        let key = requester_key(user, &relevant);
        if let Some((v, _)) = self.lock_requesters().views.get(&key) {
            return v.clone();
        }
        let relevant: Vec<String> = relevant.into_iter().map(str::to_string).collect();
        let view = outside_request_scope(|| {
            Arc::new(requester_view(
                &self.state,
                &self.grantees(),
                username,
                &relevant,
                Timestamp::now(),
            ))
        });
        self.lock_requesters().insert(key, view.clone());
        view
    }

    /// Requester views cached for this snapshot: entries and estimated bytes.
    pub fn requester_cache(&self) -> (usize, usize) {
        let cache = self.lock_requesters();
        (cache.views.len(), cache.bytes)
    }

    /// Names of the members that may be in `group`: invited to it, or matched
    /// by one of `sets`. A superset of its members (the core decides who
    /// counts, [`crate::core::effective::group_members`]); found without a
    /// scan unless there are identity sets to match.
    pub fn members_of(&self, group: &str, sets: &[IdentitySet]) -> BTreeSet<String> {
        let mut out = self.invited.get(group).cloned().unwrap_or_default();
        if !sets.is_empty() {
            out.extend(
                self.state
                    .members
                    .values()
                    .filter(|m| sets.iter().any(|s| s.matches(m)))
                    .map(|m| m.name.clone()),
            );
        }
        out
    }

    /// The definitions of the members that may be in the existing `group`.
    pub fn candidate_members(&self, group: &str) -> Vec<&MemberDef> {
        let sets = self
            .state
            .groups
            .get(group)
            .map(|g| g.identity_sets.as_slice())
            .unwrap_or_default();
        self.members_of(group, sets)
            .iter()
            .filter_map(|name| self.state.members.get(name))
            .collect()
    }

    fn lock_requesters(&self) -> std::sync::MutexGuard<'_, RequesterCache> {
        self.requesters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn invite(&mut self, m: &MemberDef) {
        for g in &m.groups {
            self.invited
                .entry(g.clone())
                .or_default()
                .insert(m.name.clone());
        }
    }

    fn uninvite(&mut self, m: &MemberDef) {
        for g in &m.groups {
            if let Some(names) = self.invited.get_mut(g) {
                names.remove(&m.name);
                if names.is_empty() {
                    self.invited.remove(g);
                }
            }
        }
    }

    /// Drops what was derived from the state. The grantees' privileges come
    /// from groups and API keys only (and the Organization's settings), so a
    /// Member change keeps them; every change can remap requesters.
    fn invalidate(&mut self, kind: Kind) {
        if kind != Kind::Member {
            self.grantees = OnceLock::new();
        }
        self.subjects = OnceLock::new();
        self.requesters = Mutex::default();
        self.decisions = Default::default();
    }

    fn is_empty(&self) -> bool {
        let s = &self.state;
        s.org.is_none() && s.groups.is_empty() && s.members.is_empty() && s.api_keys.is_empty()
    }

    /// Puts a definition in place of the one of the same kind and name (or
    /// removes it: `new` is `None`), answering what the change affects.
    fn put(
        &mut self,
        kind: Kind,
        name: &str,
        new: Option<Def>,
        reference: Option<ObjectReference>,
    ) -> Affected {
        let affected = match kind {
            Kind::Organization => {
                let new = match &new {
                    Some(Def::Organization(o)) => Some(o),
                    _ => None,
                };
                // One organization per namespace (admission refuses a
                // second); should one slip in while the webhook was down,
                // keep judging by the first.
                if !self.state.is_home(name) {
                    return Affected::default();
                }
                route::organization(self, self.state.org.as_ref(), new)
            }
            Kind::Group => {
                let new = match &new {
                    Some(Def::Group(g)) => Some(g),
                    _ => None,
                };
                route::group(self, self.state.groups.get(name), new)
            }
            Kind::Member => {
                let new = match &new {
                    Some(Def::Member(m)) => Some(m),
                    _ => None,
                };
                route::member(self, self.state.members.get(name), new)
            }
            Kind::ApiKey => {
                let new = match &new {
                    Some(Def::ApiKey(k)) => Some(k),
                    _ => None,
                };
                route::api_key(self, self.state.api_keys.get(name), new)
            }
        };
        if affected.is_empty() {
            // Same definition (a status write): nothing derived changes.
            return affected;
        }
        match (kind, new) {
            (_, Some(Def::Organization(o))) => {
                self.state.org = Some(o);
                self.organization = reference;
            }
            (Kind::Organization, None) => {
                self.state.org = None;
                self.organization = None;
            }
            (_, Some(Def::Group(g))) => {
                self.state.groups.insert(name.to_string(), g);
            }
            (Kind::Group, None) => {
                self.state.groups.remove(name);
            }
            (_, Some(Def::Member(m))) => {
                if let Some(old) = self.state.members.remove(name) {
                    self.uninvite(&old);
                }
                self.invite(&m);
                self.state.members.insert(name.to_string(), m);
            }
            (Kind::Member, None) => {
                if let Some(old) = self.state.members.remove(name) {
                    self.uninvite(&old);
                }
            }
            (_, Some(Def::ApiKey(k))) => {
                self.state.api_keys.insert(name.to_string(), k);
            }
            (Kind::ApiKey, None) => {
                self.state.api_keys.remove(name);
            }
        }
        self.invalidate(kind);
        affected
    }

    fn names(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::Organization => self.state.org.iter().map(|o| o.name.clone()).collect(),
            Kind::Group => self.state.groups.keys().cloned().collect(),
            Kind::Member => self.state.members.keys().cloned().collect(),
            Kind::ApiKey => self.state.api_keys.keys().cloned().collect(),
        }
    }
}

/// The four kinds, as the index stores them.
pub trait Indexed:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    const KIND: Kind;
    /// The definition the rules read.
    fn def(&self) -> Def;
    /// What Events about the namespace's organization regard (the
    /// Organization only; the index keeps it beside the definition).
    fn reference(&self) -> Option<ObjectReference> {
        None
    }
    /// The generation the status last reported on, if any.
    fn observed_generation(&self) -> Option<i64>;
    /// Its status does not report on its current spec (new, or edited in a
    /// field the definition leaves out): it must be reconciled even when the
    /// definition did not change.
    fn stale(&self) -> bool {
        self.meta().generation.is_some() && self.observed_generation() != self.meta().generation
    }
    /// The digests of the values an API key's status reports (others: none).
    fn digests(&self) -> Option<KeyDigests> {
        None
    }
    /// When an API key's status says it was last used (others: never).
    fn last_used(&self) -> Option<Timestamp> {
        None
    }
    /// Drops what the cache need not hold of the status ([`cached_status`]).
    fn trim_status(&mut self) {}
    /// Drops what the store's copy need not hold once the index has the
    /// definition (`watch`: the index reads each event first). The
    /// controllers read their definitions from the index snapshot and of the
    /// stored object only its name, namespace, uid, generation, timestamps
    /// and status: never its labels or annotations (no annotation of ours
    /// is cached since the status digests are typed, [`cached_status`]).
    fn lean(&mut self) {
        let meta = self.meta_mut();
        meta.labels = None;
        meta.annotations = None;
    }
}

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
    }
    affected
}

impl Indexed for Organization {
    const KIND: Kind = Kind::Organization;
    fn def(&self) -> Def {
        Def::Organization(OrgDef::from(self))
    }
    fn reference(&self) -> Option<ObjectReference> {
        Some(reference(self))
    }
    fn observed_generation(&self) -> Option<i64> {
        self.status.as_ref()?.observed_generation
    }
}

impl Indexed for Group {
    const KIND: Kind = Kind::Group;
    fn trim_status(&mut self) {
        cached_status::trim(
            &mut self.status,
            &["privileges", "members", "inactiveMembers"],
        );
    }
    /// And the spec: the Group reconcile reads the `GroupDef` from the
    /// index (`controller::group::desired_status`), the Organization's
    /// seeding whether Administrators exists from the index too.
    fn lean(&mut self) {
        self.meta_mut().labels = None;
        self.meta_mut().annotations = None;
        self.spec = GroupSpec {
            display_name: None,
            built_in: None,
            template: None,
            privileges: Vec::new(),
            identity_sets: Vec::new(),
            access: Vec::new(),
            duplicate_of: None,
        };
    }
    fn def(&self) -> Def {
        let def = GroupDef::from(self);
        intern_names(std::iter::once(def.name.as_str()).chain(spec_names(&def.privileges)));
        Def::Group(def)
    }
    fn observed_generation(&self) -> Option<i64> {
        self.status.as_ref()?.observed_generation
    }
}

impl Indexed for Member {
    const KIND: Kind = Kind::Member;
    fn trim_status(&mut self) {
        cached_status::trim(&mut self.status, &["groups", "privileges"]);
    }
    /// And the spec: the Member reconcile reads the `MemberDef` from the
    /// index (`controller::member::desired_status`).
    fn lean(&mut self) {
        self.meta_mut().labels = None;
        self.meta_mut().annotations = None;
        self.spec = MemberSpec {
            identity: MemberIdentity {
                provider: Provider::Email,
                username: String::new(),
            },
            groups: Vec::new(),
            subjects: Vec::new(),
            accepted: false,
            sso_groups: Vec::new(),
            salesforce_profile: None,
        };
    }
    fn def(&self) -> Def {
        Def::Member(MemberDef::from(self))
    }
    fn observed_generation(&self) -> Option<i64> {
        self.status.as_ref()?.observed_generation
    }
}

impl Indexed for ApiKey {
    const KIND: Kind = Kind::ApiKey;
    fn def(&self) -> Def {
        let def = ApiKeyDef::from(self);
        intern_names(std::iter::once(def.name.as_str()).chain(spec_names(&def.privileges)));
        Def::ApiKey(def)
    }
    fn observed_generation(&self) -> Option<i64> {
        self.status.as_ref()?.observed_generation
    }
    fn digests(&self) -> Option<KeyDigests> {
        Some(key_digests(self.status.as_ref()?))
    }
    fn last_used(&self) -> Option<Timestamp> {
        self.status.as_ref()?.last_used_at.as_deref()?.parse().ok()
    }
}

/// The digests an ApiKey status reports: the current value's, and the
/// previous value's with the end of its overlap (without an end, the
/// previous value is not accepted at all). A hash that is not 64 hex digits
/// is ignored.
pub fn key_digests(status: &crate::api::ApiKeyStatus) -> KeyDigests {
    let digest = |hex_digest: &Option<String>| {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_digest.as_deref()?, &mut out).ok()?;
        Some(out)
    };
    let until = status
        .previous_expires_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok());
    KeyDigests {
        current: digest(&status.hash),
        previous: digest(&status.previous_hash).zip(until),
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

/// An object of any of the four kinds (for relist buffers).
trait ErasedObject: Send + Sync {
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

/// One namespace's key digests by key name, and the table built from them;
/// and each key's `status.lastUsedAt` (for the decision service's usage
/// flusher), which never rebuilds the table.
#[derive(Default)]
struct NamespaceKeys {
    digests: HashMap<String, KeyDigests>,
    table: Arc<KeyTable>,
    last_used: HashMap<String, Timestamp>,
}

impl NamespaceKeys {
    /// Sets (or, with `None`, removes) one key's digests; rebuilds the table
    /// only when they changed.
    fn set(&mut self, name: &str, digests: Option<KeyDigests>) {
        let changed = match digests {
            Some(d) if self.digests.get(name) != Some(&d) => {
                self.digests.insert(name.to_string(), d);
                true
            }
            Some(_) => false,
            None => self.digests.remove(name).is_some(),
        };
        if changed {
            self.rebuild();
        }
    }

    /// Sets (or removes) one key's last use as its status reports it.
    fn set_last_used(&mut self, name: &str, at: Option<Timestamp>) {
        match at {
            Some(t) if self.last_used.get(name) != Some(&t) => {
                self.last_used.insert(name.to_string(), t);
            }
            Some(_) => {}
            None => {
                self.last_used.remove(name);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.digests.is_empty() && self.last_used.is_empty()
    }

    fn rebuild(&mut self) {
        self.table = Arc::new(KeyTable::new(
            self.digests.iter().map(|(n, d)| (n.as_str(), d)),
        ));
    }
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

    /// All four kinds have been listed once.
    pub fn synced(&self) -> bool {
        self.lock().synced.iter().all(|s| *s)
    }

    /// Marks every kind as listed, for an index filled by hand (tests, benchmarks).
    pub fn mark_synced(&self) {
        self.lock().synced = [true; 4];
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

    /// Computes the grantees' privileges of a namespace now, off the request
    /// path (the watchers call this once the events at hand are applied, so
    /// the next request after a change finds them ready).
    pub fn warm(&self, namespace: &str) {
        let ns = self.namespace(namespace);
        if !ns.is_empty() {
            ns.grantees();
        }
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
                advice: Default::default(),
            },
        );
        o.metadata.namespace = Some(ns.into());
        o
    }

    /// A flood of identities no Member names (each a new user name, each
    /// with a thousand groups) shares one cached view; the identities
    /// Members name get theirs; the cache stays within its bounds.
    #[test]
    fn requester_views_are_kept_by_the_identity_s_relevant_part() {
        use crate::core::model::{MemberDef, Subject, SubjectKind};
        let mut state = OrgState::default();
        for (name, kind, subject) in [
            ("ann", SubjectKind::User, "ann@example.com"),
            ("ops", SubjectKind::Group, "oidc:ops"),
        ] {
            state.members.insert(
                name.into(),
                MemberDef {
                    name: name.into(),
                    subjects: vec![Subject {
                        kind,
                        name: subject.into(),
                        namespace: None,
                    }],
                    accepted: true,
                    ..MemberDef::default()
                },
            );
        }
        let ns = Namespace::new(state);
        let junk: Vec<String> = (0..1000).map(|i| format!("forged-{i}")).collect();
        for i in 0..2000 {
            let view = ns.requester(&format!("mallory-{i}-{}", "x".repeat(1000)), &junk);
            assert!(view.members.is_empty());
        }
        assert_eq!(ns.requester_cache().0, 1, "one view for everyone unnamed");
        let mut with_ops = junk.clone();
        with_ops.push("oidc:ops".into());
        assert_eq!(ns.requester("mallory", &with_ops).members, ["ops"]);
        assert_eq!(ns.requester("ann@example.com", &junk).members, ["ann"]);
        assert_eq!(
            ns.requester("ann@example.com", &with_ops).members,
            ["ann", "ops"]
        );
        let (entries, bytes) = ns.requester_cache();
        assert_eq!(entries, 4);
        assert!(bytes < 4 * 1024, "{bytes} bytes");
        let (all_entries, _) = requester_cache_usage();
        assert!(all_entries >= 4);
    }

    #[test]
    fn the_requester_cache_is_bounded_in_entries_and_bytes() {
        let mut cache = RequesterCache::default();
        for i in 0..(REQUESTER_CACHE as u32 + 100) {
            let key = requester_key(Some(&i.to_string()), &[]);
            cache.insert(key, Arc::new(RequesterView::default()));
            assert!(cache.views.len() <= REQUESTER_CACHE);
        }
        assert_eq!(cache.views.len(), REQUESTER_CACHE);
        let big = RequesterView {
            members: vec!["m".repeat(REQUESTER_CACHE_BYTES / 2)],
            ..RequesterView::default()
        };
        cache.insert([7; 32], Arc::new(big.clone()));
        cache.insert([8; 32], Arc::new(big.clone()));
        assert!(cache.bytes <= REQUESTER_CACHE_BYTES, "{}", cache.bytes);
        assert!(cache.views.contains_key(&[8; 32]));
        let huge = RequesterView {
            members: vec!["m".repeat(REQUESTER_CACHE_BYTES)],
            ..RequesterView::default()
        };
        cache.insert([9; 32], Arc::new(huge));
        assert!(!cache.views.contains_key(&[9; 32]), "too big to keep");
        assert_eq!(
            cache.bytes,
            cache.views.values().map(|(_, n)| n).sum::<usize>()
        );
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

    /// An object of one of the four kinds from YAML (a fixture), in namespace `a`.
    fn yaml<K: serde::de::DeserializeOwned + Resource>(text: &str) -> K {
        let mut obj: K = serde_saphyr::from_str(text).expect("fixture");
        obj.meta_mut().namespace = Some("a".into());
        obj
    }

    /// The fixture organization: a group granted by invitation, a group of
    /// everyone at an SSO group, three members, and a key named by an access list.
    fn fixture() -> (Index, Vec<Group>, Vec<Member>) {
        let index = Index::new();
        index.apply(&org("a"));
        let groups: Vec<Group> = [
            "metadata: {name: readers, generation: 1}\nspec: {privileges: [{service: Content, domain: Sources, level: View}]}",
            "metadata: {name: sso-ops, generation: 1}\nspec: {identitySets: [{ssoGroup: ops}], access: [{group: readers, level: View}]}",
            "metadata: {name: lonely, generation: 1}\nspec: {}",
        ]
        .iter()
        .map(|y| yaml(y))
        .collect();
        for g in &groups {
            index.apply(g);
        }
        let members: Vec<Member> = [
            "metadata: {name: ann, generation: 1}\nspec: {identity: {provider: Email, username: ann@x.example}, groups: [readers], accepted: true}",
            "metadata: {name: bob, generation: 1}\nspec: {identity: {provider: SingleSignOn, username: bob}, ssoGroups: [ops], accepted: true}",
            "metadata: {name: cy, generation: 1}\nspec: {identity: {provider: Email, username: cy@x.example}, accepted: true}",
        ]
        .iter()
        .map(|y| yaml(y))
        .collect();
        for m in &members {
            index.apply(m);
        }
        (index, groups, members)
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The operator's own status write (same spec, status now current)
    /// affects nothing: no reconcile, no fan-out.
    #[test]
    fn a_status_write_affects_nothing() {
        let (index, mut groups, _) = fixture();
        let g = &mut groups[0];
        g.status = Some(crate::api::GroupStatus {
            observed_generation: Some(1),
            ..Default::default()
        });
        assert!(index.apply(g).is_empty());
    }

    /// An edit reaches the group, its members by either route, the grantees
    /// its access list names and the organization; nobody else.
    #[test]
    fn a_group_edit_reaches_its_members_and_grantees_only() {
        let (index, mut groups, _) = fixture();
        groups[0].spec.privileges.clear();
        let affected = index.apply(&groups[0]);
        assert_eq!(affected.groups, names(&["readers"]));
        assert_eq!(affected.members, names(&["ann"]));
        // The organization's least-privilege findings follow every group.
        assert!(affected.organization);

        // sso-ops gives readers access: editing it re-resolves readers too.
        groups[1].spec.access.clear();
        let affected = index.apply(&groups[1]);
        assert_eq!(affected.groups, names(&["readers", "sso-ops"]));
        assert_eq!(affected.members, names(&["ann", "bob"]));
    }

    /// A member change reaches its groups before and after, and the organization.
    #[test]
    fn a_member_change_reaches_its_old_and_new_groups() {
        let (index, _, mut members) = fixture();
        members[0].spec.groups = vec!["lonely".into()];
        let affected = index.apply(&members[0]);
        assert_eq!(affected.members, names(&["ann"]));
        assert_eq!(affected.groups, names(&["lonely", "readers"]));
        assert!(affected.organization);
        // The invitation index follows.
        assert_eq!(
            index.namespace("a").members_of("readers", &[]),
            BTreeSet::new()
        );
        assert_eq!(
            index.namespace("a").members_of("lonely", &[]),
            names(&["ann"])
        );
    }

    /// A new group reaches those invited to it before it existed, and the
    /// objects naming it; deleting it, the same.
    #[test]
    fn a_group_coming_or_going_reaches_who_names_it() {
        let (index, groups, mut members) = fixture();
        members[2].spec.groups = vec!["later".into()];
        index.apply(&members[2]);
        let later: Group = yaml("metadata: {name: later, generation: 1}\nspec: {}");
        let affected = index.apply(&later);
        assert_eq!(affected.members, names(&["cy"]));
        assert!(affected.organization);
        let affected = index.delete(&groups[0]);
        // sso-ops's access list names readers: its status reports it missing.
        assert!(affected.groups.contains("sso-ops"));
        assert_eq!(affected.members, names(&["ann"]));
    }

    /// The organization's status write touches nobody; its invitation
    /// lifetime touches everyone.
    #[test]
    fn organization_settings_fan_out_its_status_does_not() {
        let (index, _, _) = fixture();
        let mut o = org("a");
        o.status = Some(Default::default());
        assert!(index.apply(&o).is_empty());
        o.spec.invitation_lifetime_days = 7;
        let affected = index.apply(&o);
        assert_eq!(affected.members, names(&["ann", "bob", "cy"]));
        assert_eq!(affected.groups.len(), 3);
    }

    /// The candidates the index offers for a group are a superset of its
    /// members: the core's `group_members` over them equals it over everyone.
    #[test]
    fn candidate_members_agree_with_every_member() {
        let (index, _, _) = fixture();
        let ns = index.namespace("a");
        let grantees = ns.grantees();
        let now = Timestamp::now();
        for g in ns.state.groups.keys() {
            let everyone = crate::core::effective::group_members(
                &ns.state,
                &grantees,
                ns.state.members.values(),
                g,
                now,
            );
            let candidates = crate::core::effective::group_members(
                &ns.state,
                &grantees,
                ns.candidate_members(g),
                g,
                now,
            );
            assert_eq!(everyone, candidates, "group {g}");
        }
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

    fn api_key(ns: &str, name: &str, hash: Option<[u8; 32]>) -> ApiKey {
        let mut k: ApiKey = serde_json::from_value(serde_json::json!({
            "apiVersion": "orgaccess.dev/v1alpha1",
            "kind": "ApiKey",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"displayName": name, "template": "AnonymousSearch"}
        }))
        .unwrap();
        k.status = Some(crate::api::ApiKeyStatus {
            hash: hash.map(hex::encode),
            ..Default::default()
        });
        k
    }

    /// The key table follows status writes, deletions and relists, which
    /// change no definition (so nothing else is invalidated).
    #[test]
    fn key_digests_follow_status_writes_deletes_and_relists() {
        use sha2::Digest;
        let index = Index::new();
        let value: [u8; 32] = sha2::Sha256::digest(b"value").into();
        let other = [2u8; 32];
        let verifies = |ns: &str| {
            let snap = index.namespace(ns);
            crate::core::decision::verify_key(
                &snap.state,
                &snap.grantees(),
                &index.key_table(ns),
                b"value",
                "127.0.0.1".parse().unwrap(),
                jiff::Timestamp::now(),
            )
            .is_ok()
        };

        index.apply(&api_key("a", "k", None));
        assert!(!verifies("a"));
        index.apply(&api_key("a", "k", Some(value)));
        assert!(verifies("a"), "a status write adds the digest");
        assert!(!verifies("b"), "only in its namespace");
        index.apply(&api_key("a", "k", Some(other)));
        assert!(!verifies("a"), "a rotation replaces it");
        index.apply(&api_key("a", "k", Some(value)));
        index.delete(&api_key("a", "k", Some(value)));
        assert!(index.key_table("a").is_empty(), "a deletion forgets it");

        index.apply(&api_key("a", "k", Some(value)));
        index.apply_event::<ApiKey>(&watcher::Event::Init);
        index.apply_event(&watcher::Event::InitApply(api_key("a", "x", Some(other))));
        index.apply_event::<ApiKey>(&watcher::Event::InitDone);
        assert!(!verifies("a"), "a relist without the key forgets it");
        assert_eq!(
            index.key_table("a").len(),
            1,
            "only the listed key's digest"
        );
    }

    /// A usage write (`status.lastUsedAt`, the decision service's) is
    /// recorded for the flusher and changes nothing else: no route, no new
    /// snapshot, no new key table.
    #[test]
    fn a_usage_write_routes_nothing_and_keeps_the_table_and_snapshot() {
        let index = Index::new();
        let mut k = api_key("a", "k", Some([7u8; 32]));
        k.status.as_mut().unwrap().observed_generation = Some(1);
        k.metadata.generation = Some(1);
        index.apply(&k);
        assert!(index.has_api_key("a", "k") && !index.has_api_key("a", "x"));
        assert_eq!(index.last_used("a", "k"), None);
        let table = index.key_table("a");
        let snapshot = index.namespace("a");
        let grantees = snapshot.grantees();
        drop(snapshot);

        k.status.as_mut().unwrap().last_used_at = Some("2026-11-30T19:05:00Z".into());
        let affected = index.apply(&k);
        assert!(affected.is_empty(), "{affected:?}");
        assert!(Arc::ptr_eq(&table, &index.key_table("a")), "table rebuilt");
        assert!(
            Arc::ptr_eq(&grantees, &index.namespace("a").grantees()),
            "derived facts dropped"
        );
        assert_eq!(
            index.last_used("a", "k"),
            Some("2026-11-30T19:05:00Z".parse().unwrap())
        );
        index.delete(&k);
        assert_eq!(index.last_used("a", "k"), None, "forgotten with the key");
    }
}
