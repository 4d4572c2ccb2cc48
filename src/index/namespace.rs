//! One organization's snapshot ([`Namespace`]): its objects' definitions,
//! the invitation map, and what is derived from them on first use and kept
//! until the namespace changes (the requester views, the decision facts) or
//! brought up to date by the change (the grantees' privileges: a group's
//! change recomputes its own and those its access list names, not every
//! group's).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;

use super::decisions::DecisionFacts;
use super::lookups::{self, Links};
use super::requesters::{RequesterCache, requester_key};
use super::route::{self, Affected};
use crate::core::advice::Counted;
use crate::core::bindings::Recorded;
use crate::core::change::Def;
use crate::core::effective::{
    Grantee, Grantees, RequesterView, SubjectNames, access_of, changed_by, requester_view,
    resolve_grantees,
};
use crate::core::model::{IdentitySet, Kind, MemberDef, OrgState};
use crate::core::privilege::outside_request_scope;

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
    /// How many objects record a tenant's binding, kept as they come and go
    /// (ForeignBindings asks it first, on every trusted change).
    recorded: Recorded,
    /// Who names whom among groups and keys, kept as they come and go
    /// (`lookups.rs`: what the advisor's review of a change asks).
    pub(super) links: Links,
    /// The groups whose privileges hold Groups Edit or Activities View,
    /// computed with the grantees and brought up to date with them.
    overseers: OnceLock<Arc<BTreeSet<String>>>,
    /// The counted groups and their members up to a limit, as the advisor's
    /// review of a change asks (`Lookups::counted`), gathered on first use
    /// and kept until a Member, the Organization, a counted group or which
    /// groups are counted changes.
    counted: Mutex<Option<(usize, Arc<Counted>)>>,
    /// The user and group names the Members list as subjects.
    subjects: OnceLock<Arc<SubjectNames>>,
    requesters: Mutex<RequesterCache>,
    /// What decisions derive per member and API key (`decisions.rs`).
    pub(super) decisions: DecisionFacts,
}

impl Clone for Namespace {
    fn clone(&self) -> Self {
        // Derived data is dropped (a copy is made only to be changed), but
        // the grantees: `put` brings them up to date for the change, which
        // costs far less than computing them again.
        Namespace {
            state: self.state.clone(),
            organization: self.organization.clone(),
            invited: self.invited.clone(),
            grantees: self.grantees.clone(),
            recorded: self.recorded,
            links: self.links.clone(),
            overseers: self.overseers.clone(),
            counted: Mutex::new(self.counted_cache().clone()),
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
        ns.recorded = Recorded::of(&state);
        for g in state.groups.values() {
            ns.links.group(g, true);
        }
        for k in state.api_keys.values() {
            ns.links.api_key(k, true);
        }
        ns.state = state;
        ns
    }

    /// The groups whose privileges hold Groups Edit or Activities View
    /// ([`crate::core::advice::oversees`]), computed once.
    pub fn overseers(&self) -> Arc<BTreeSet<String>> {
        self.overseers
            .get_or_init(|| Arc::new(lookups::overseers(&self.grantees())))
            .clone()
    }

    /// How many members, groups and API keys record a tenant's binding
    /// ([`Recorded::of`] of the state, without its scan).
    pub fn recorded(&self) -> Recorded {
        self.recorded
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
    /// at `now` ([`requester_view`]), computed once per identity. A cached
    /// view answers only inside its [`Steady`](crate::core::effective::Steady)
    /// span (a membership ending changes the privileges: the view is computed
    /// again at `now` past it), and until the namespace changes.
    ///
    /// Only the identity's relevant part is read ([`SubjectNames::relevant`]):
    /// the user name if a Member names it, the groups Members name. That part
    /// is the cache's key, as a SHA-256 digest, so neither a long user name
    /// nor a list of a million groups is kept or compared, and every identity
    /// no Member names shares one entry.
    pub fn requester(
        &self,
        username: &str,
        groups: &[String],
        now: Timestamp,
    ) -> Arc<RequesterView> {
        let names = self.subject_names();
        let (user, relevant) = names.relevant(username, groups);
        let key = requester_key(user, &relevant);
        if let Some((v, _)) = self.lock_requesters().views.get(&key)
            && v.steady.contains(now)
        {
            return v.clone();
        }
        let relevant: Vec<String> = relevant.into_iter().map(str::to_string).collect();
        let view = outside_request_scope(|| {
            Arc::new(requester_view(
                &self.state,
                &self.grantees(),
                username,
                &relevant,
                now,
            ))
        });
        let mut cache = self.lock_requesters();
        cache.remove(&key);
        cache.insert(key, view.clone());
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

    /// The names of the Members that may be in the existing `group` (those
    /// [`candidate_members`](Self::candidate_members) gives), or `None` as
    /// soon as there are more than `limit`: a large group's names are not
    /// collected to be thrown away.
    pub fn member_names_at_most(&self, group: &str, limit: usize) -> Option<BTreeSet<String>> {
        let invited = self.invited.get(group);
        if invited.map_or(0, BTreeSet::len) > limit {
            return None;
        }
        // Every invited name is a Member's (`invite` and `uninvite` keep
        // the map with the members).
        let mut out: BTreeSet<String> = invited.cloned().unwrap_or_default();
        let sets = self
            .state
            .groups
            .get(group)
            .map(|g| g.identity_sets.as_slice())
            .unwrap_or_default();
        if !sets.is_empty() {
            for m in self.state.members.values() {
                if sets.iter().any(|s| s.matches(m)) {
                    out.insert(m.name.clone());
                    if out.len() > limit {
                        return None;
                    }
                }
            }
        }
        Some(out)
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
            .map(Arc::as_ref)
            .collect()
    }

    fn lock_requesters(&self) -> std::sync::MutexGuard<'_, RequesterCache> {
        self.requesters.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn counted_cache(&self) -> std::sync::MutexGuard<'_, Option<(usize, Arc<Counted>)>> {
        self.counted.lock().unwrap_or_else(|e| e.into_inner())
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
    /// Member or AccessReview change keeps them; every change can remap requesters.
    /// Drops what the change of an object of `kind` made stale. The
    /// grantees (if computed) are brought up to date instead for `changed`
    /// (a group's or API key's change, [`changed_by`]); an Organization's
    /// change drops them.
    /// `counted_changed`: whether the change may alter which groups are
    /// counted besides their privileges (the Administrators group).
    fn invalidate(&mut self, kind: Kind, changed: Vec<Grantee>, counted_changed: bool) {
        let counted = self.counted.get_mut().unwrap_or_else(|e| e.into_inner());
        match kind {
            Kind::AccessReview => {}
            Kind::Member => *counted = None,
            Kind::Group | Kind::ApiKey => {
                // A counted group's own change (its identity sets, its
                // removal) changes who its members are.
                let mut stale = counted_changed
                    || counted.as_ref().is_some_and(|(_, c)| {
                        changed
                            .iter()
                            .any(|g| matches!(g, Grantee::Group(n) if c.groups.contains(n)))
                    });
                if let Some(grantees) = self.grantees.get_mut() {
                    let (state, links) = (&self.state, &self.links);
                    // Its ids must outlive any request, as `grantees`'.
                    outside_request_scope(|| {
                        Arc::make_mut(grantees)
                            .refresh_named(state, changed.iter().cloned(), |g| links.naming(g))
                    });
                    if let Some(overseers) = self.overseers.get_mut() {
                        stale |= lookups::refresh_overseers(
                            Arc::make_mut(overseers),
                            grantees,
                            &changed,
                        );
                    } else {
                        stale = true;
                    }
                } else {
                    self.overseers = OnceLock::new();
                    stale = true;
                }
                if stale {
                    *counted = None;
                }
            }
            Kind::Organization => {
                self.grantees = OnceLock::new();
                self.overseers = OnceLock::new();
                *counted = None;
            }
        }
        self.subjects = OnceLock::new();
        self.requesters = Mutex::default();
        self.decisions = Default::default();
    }

    pub(super) fn is_empty(&self) -> bool {
        let s = &self.state;
        s.org.is_none()
            && s.groups.is_empty()
            && s.members.is_empty()
            && s.api_keys.is_empty()
            && s.reviews.is_empty()
    }

    /// Puts a definition in place of the one of the same kind and name (or
    /// removes it: `new` is `None`), answering what the change affects.
    pub(super) fn put(
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
                route::group(self, self.state.groups.get(name).map(Arc::as_ref), new)
            }
            Kind::Member => {
                let new = match &new {
                    Some(Def::Member(m)) => Some(m),
                    _ => None,
                };
                route::member(self, self.state.members.get(name).map(Arc::as_ref), new)
            }
            Kind::ApiKey => {
                let new = match &new {
                    Some(Def::ApiKey(k)) => Some(k),
                    _ => None,
                };
                route::api_key(self, self.state.api_keys.get(name).map(Arc::as_ref), new)
            }
            Kind::AccessReview => {
                let new = match &new {
                    Some(Def::AccessReview(r)) => Some(r),
                    _ => None,
                };
                route::access_review(self, self.state.reviews.get(name).map(Arc::as_ref), new)
            }
        };
        if affected.is_empty() {
            // Same definition (a status write): nothing derived changes.
            return affected;
        }
        let grantee = match kind {
            Kind::Group => Some(Grantee::Group(name.to_string())),
            Kind::ApiKey => Some(Grantee::ApiKey(name.to_string())),
            _ => None,
        };
        let changed = grantee.map_or_else(Vec::new, |g| {
            let new = match &new {
                Some(Def::Group(d)) => d.access.as_slice(),
                Some(Def::ApiKey(d)) => d.access.as_slice(),
                _ => &[],
            };
            changed_by(g.clone(), access_of(&self.state, &g), new)
        });
        let replaced = match kind {
            Kind::Group => self.state.groups.get(name).map(|g| &g.meta),
            Kind::Member => self.state.members.get(name).map(|m| &m.meta),
            Kind::ApiKey => self.state.api_keys.get(name).map(|k| &k.meta),
            Kind::Organization | Kind::AccessReview => None,
        };
        if let Some(meta) = replaced {
            self.recorded.count(kind, meta, -1);
        }
        if let Some(def) = &new {
            self.recorded.count(kind, def.object().meta(), 1);
        }
        let administrators = self.links.administrators().cloned();
        match kind {
            Kind::Group => {
                if let Some(old) = self.state.groups.get(name) {
                    self.links.group(old, false);
                }
                if let Some(Def::Group(g)) = &new {
                    self.links.group(g, true);
                }
            }
            Kind::ApiKey => {
                if let Some(old) = self.state.api_keys.get(name) {
                    self.links.api_key(old, false);
                }
                if let Some(Def::ApiKey(k)) = &new {
                    self.links.api_key(k, true);
                }
            }
            _ => {}
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
                self.state.groups.insert(name.to_string(), Arc::new(g));
            }
            (Kind::Group, None) => {
                self.state.groups.remove(name);
            }
            (_, Some(Def::Member(m))) => {
                if let Some(old) = self.state.members.remove(name) {
                    self.uninvite(&old);
                }
                self.invite(&m);
                self.state.members.insert(name.to_string(), Arc::new(m));
            }
            (Kind::Member, None) => {
                if let Some(old) = self.state.members.remove(name) {
                    self.uninvite(&old);
                }
            }
            (_, Some(Def::ApiKey(k))) => {
                self.state.api_keys.insert(name.to_string(), Arc::new(k));
            }
            (Kind::ApiKey, None) => {
                self.state.api_keys.remove(name);
            }
            (_, Some(Def::AccessReview(r))) => {
                self.state.reviews.insert(name.to_string(), Arc::new(r));
            }
            (Kind::AccessReview, None) => {
                self.state.reviews.remove(name);
            }
        }
        let counted_changed = self.links.administrators() != administrators.as_ref();
        self.invalidate(kind, changed, counted_changed);
        affected
    }

    pub(super) fn names(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::Organization => self.state.org.iter().map(|o| o.name.clone()).collect(),
            Kind::Group => self.state.groups.keys().cloned().collect(),
            Kind::Member => self.state.members.keys().cloned().collect(),
            Kind::ApiKey => self.state.api_keys.keys().cloned().collect(),
            Kind::AccessReview => self.state.reviews.keys().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::index::fixtures::fixture;
    use jiff::Timestamp;
    use std::sync::Arc;

    mod refreshed_grantees {
        use std::sync::Arc;

        use proptest::prelude::*;

        use crate::api::{ApiKey, Group, Member};
        use crate::core::advice::{Counted, Lookups, Scan};
        use crate::core::bindings::Recorded;
        use crate::core::effective::{Grantee, resolve_grantees};
        use crate::index::Index;
        use crate::index::fixtures::{org, yaml};

        const NAMES: [&str; 4] = ["g0", "g1", "k0", "k1"];
        /// Members, changed between the groups' and keys' steps.
        const MEMBERS: [&str; 2] = ["m0", "m1"];

        /// One step: put (or delete) a group or key named from a small pool,
        /// with privileges from a template or explicit, and an access list
        /// naming others of the pool.
        #[derive(Clone, Debug)]
        struct Step {
            target: usize,
            delete: bool,
            privileges: usize,
            access: Vec<(usize, bool)>,
            /// Hold the snapshot across the change (the copy path).
            hold: bool,
            /// The object records a tenant's binding (`orgaccess.dev/bound-by`).
            recorded: bool,
            /// Then this member put (recorded or not) or deleted: (which, put,
            /// recorded, which groups: 0 g0, 1 g1, 2 none, 3 none but the SSO
            /// group Engineering).
            member: Option<(usize, bool, bool, usize)>,
            /// For a group: 1 a duplicate of another, 2 identity sets, 3
            /// built in as Administrators; 0 none of these.
            extra: usize,
        }

        fn step() -> impl Strategy<Value = Step> {
            (
                0..NAMES.len(),
                prop::bool::weighted(0.2),
                0..6usize,
                prop::collection::vec((0..NAMES.len(), any::<bool>()), 0..3),
                any::<bool>(),
                any::<bool>(),
                prop::option::of((0..MEMBERS.len(), any::<bool>(), any::<bool>(), 0..4usize)),
                0..4usize,
            )
                .prop_map(
                    |(target, delete, privileges, access, hold, recorded, member, extra)| Step {
                        target,
                        delete,
                        privileges,
                        access,
                        hold,
                        recorded,
                        member,
                        extra,
                    },
                )
        }

        fn yaml_of(s: &Step) -> String {
            let name = NAMES[s.target];
            let access: Vec<String> = s
                .access
                .iter()
                .map(|(i, edit)| {
                    let who = NAMES[*i];
                    let field = if who.starts_with('g') {
                        "group"
                    } else {
                        "apiKey"
                    };
                    let level = if *edit { "Edit" } else { "View" };
                    format!("{{{field}: {who}, level: {level}}}")
                })
                .collect();
            let privileges = match (name.starts_with('g'), s.privileges) {
                (true, 0) => "template: ContentManagers".to_string(),
                (false, 0) => "template: SearchPages".to_string(),
                (_, 1) => "privileges: [{service: Search, domain: ExecuteQueries, level: Allowed}]"
                    .to_string(),
                (_, 2) => "privileges: [{service: Content, domain: Sources, level: Custom, \
                           resources: [{name: s1, level: Edit}]}]"
                    .to_string(),
                // Groups Edit, or Activities View: the advisor counts its members.
                (_, 3) => {
                    "privileges: [{service: Organization, domain: Groups, level: Edit}]".to_string()
                }
                (_, 4) => "privileges: [{service: Organization, domain: Activities, level: View}]"
                    .to_string(),
                _ => "privileges: []".to_string(),
            };
            let other = if name == "g0" { "g1" } else { "g0" };
            let extra = match (name.starts_with('g'), s.extra) {
                (true, 1) => format!(", duplicateOf: {other}"),
                (true, 2) => ", identitySets: [{ssoGroup: Engineering}]".to_string(),
                (true, 3) => ", builtIn: Administrators".to_string(),
                _ => String::new(),
            };
            format!(
                "metadata: {{name: {name}{}}}\nspec: {{displayName: {name}, {privileges}{extra}, access: [{}]}}",
                recorded_annotation(s.recorded),
                access.join(", ")
            )
        }

        fn recorded_annotation(recorded: bool) -> &'static str {
            if recorded {
                r#", annotations: {orgaccess.dev/bound-by: '{"spec.access":"tenant"}'}"#
            } else {
                ""
            }
        }

        fn member_yaml(which: usize, recorded: bool, groups: usize) -> String {
            let name = MEMBERS[which];
            let (provider, groups) = match groups {
                0 => ("Email", "groups: [g0]"),
                1 => ("Email", "groups: [g1]"),
                2 => ("Email", "groups: []"),
                _ => ("SingleSignOn", "groups: [], ssoGroups: [Engineering]"),
            };
            format!(
                "metadata: {{name: {name}{}}}\nspec: {{identity: {{provider: {provider}, username: {name}@x.example}}, {groups}, accepted: true}}",
                recorded_annotation(recorded)
            )
        }

        proptest! {
            /// After any sequence of changes, the grantees brought up to
            /// date change by change are those computed from scratch.
            #[test]
            fn refreshed_grantees_and_recorded_counts_are_the_scanned_ones(
                steps in prop::collection::vec(step(), 1..24),
                // The bound on the counted groups' members: below, at and
                // above the pool's two members.
                limit in 1..4usize,
            ) {
                let index = Index::new();
                index.apply(&org("a"));
                for s in &steps {
                    let before = index.namespace("a");
                    before.grantees();
                    // Gathered before the change: the change must drop it
                    // when it can alter it.
                    Lookups::counted(&*before, limit);
                    let held = s.hold.then(|| before.clone());
                    drop(before);
                    let text = yaml_of(s);
                    if NAMES[s.target].starts_with('g') {
                        let g: Group = yaml(&text);
                        if s.delete { index.delete(&g); } else { index.apply(&g); }
                    } else {
                        let k: ApiKey = yaml(&text);
                        if s.delete { index.delete(&k); } else { index.apply(&k); }
                    }
                    if let Some((which, put, recorded, groups)) = s.member {
                        let m: Member = yaml(&member_yaml(which, recorded, groups));
                        if put { index.apply(&m); } else { index.delete(&m); }
                    }
                    let ns = index.namespace("a");
                    let resolved = resolve_grantees(&ns.state);
                    prop_assert_eq!(&*ns.grantees(), &resolved, "after {:?}", s);
                    // The count of recorded bindings kept change by change
                    // is the one a scan makes.
                    prop_assert_eq!(ns.recorded(), Recorded::of(&ns.state), "after {:?}", s);
                    // What the advisor asks, kept, is what passes over the state find.
                    let members_of = |g: &str, limit: usize| ns.member_names_at_most(g, limit);
                    let scan = Scan { state: &ns.state, grantees: &resolved, members_of: &members_of };
                    let kept: &dyn Lookups = &*ns;
                    prop_assert_eq!(kept.counted_groups(), scan.counted_groups(), "after {:?}", s);
                    prop_assert_eq!(kept.identity_set_groups(), scan.identity_set_groups());
                    prop_assert_eq!(&*kept.counted(limit), &Counted::gather(&scan, limit), "after {:?}", s);
                    for n in NAMES {
                        prop_assert_eq!(kept.duplicates_of(n), scan.duplicates_of(n), "{} after {:?}", n, s);
                        for g in [Grantee::Group(n.into()), Grantee::ApiKey(n.into())] {
                            prop_assert_eq!(kept.naming(&g), scan.naming(&g), "{:?} after {:?}", g, s);
                        }
                    }
                    if let Some(held) = held {
                        // The held snapshot kept its own.
                        prop_assert_eq!(&*held.grantees(), &resolve_grantees(&held.state));
                        prop_assert!(!Arc::ptr_eq(&held, &ns));
                    }
                }
            }
        }
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
                ns.state.members.values().map(Arc::as_ref),
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
            // The bounded names are the candidates', or none past the bound.
            let names: std::collections::BTreeSet<String> = ns
                .candidate_members(g)
                .into_iter()
                .map(|m| m.name.clone())
                .collect();
            assert_eq!(ns.member_names_at_most(g, names.len()), Some(names.clone()));
            if !names.is_empty() {
                assert_eq!(
                    ns.member_names_at_most(g, names.len() - 1),
                    None,
                    "group {g}"
                );
            }
        }
    }
}
