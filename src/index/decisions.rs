//! What the decision service's checks derive from a namespace (each member's
//! groups and merged privileges, each API key's sources of privileges), kept
//! with its snapshot as the grantees and requester views are: computed on
//! first use, dropped when the namespace changes (`Namespace::invalidate`),
//! so a check is a lookup and a `covers`. Answers are the core's
//! [`check_with`], the same function as the uncached [`decision::check`]
//! (agreement: `tests/operations/decision_cache.rs`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::Namespace;
use crate::core::decision::{
    self, Answer, Facts, KeyFacts, MemberFacts, Need, Principal, check_with,
};
use crate::core::effective::{Grantees, RequesterView};
use crate::core::model::{ApiKeyDef, MemberDef};
use crate::core::privilege::outside_request_scope;

/// Members whose facts are kept per namespace. A member's facts are its
/// group names and one merged privilege set (about a kilobyte with tens of
/// grants): at most a few MiB per namespace, and only for the members the
/// decision service is asked about.
const MEMBER_FACTS: usize = 2048;
/// API keys whose facts are kept per namespace.
const KEY_FACTS: usize = 2048;

/// The derived facts of one namespace's snapshot.
#[derive(Debug, Default)]
pub(super) struct DecisionFacts {
    members: Bounded<Arc<MemberFacts>>,
    keys: Bounded<Arc<KeyFacts>>,
}

/// A map by object name of at most `N` entries; when full, an arbitrary
/// entry makes room for the new one (a namespace with more principals than
/// that keeps most of them, rather than starting over).
#[derive(Debug)]
struct Bounded<V>(Mutex<HashMap<String, V>>);

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Bounded(Mutex::default())
    }
}

impl<V: Clone> Bounded<V> {
    fn get_or_insert(&self, name: &str, limit: usize, make: impl FnOnce() -> V) -> V {
        self.get_fresh_or_insert(name, limit, |_| true, make)
    }

    /// [`get_or_insert`](Self::get_or_insert), where a kept value that is
    /// not `fresh` any more is made again and replaces it.
    fn get_fresh_or_insert(
        &self,
        name: &str,
        limit: usize,
        fresh: impl Fn(&V) -> bool,
        make: impl FnOnce() -> V,
    ) -> V {
        if let Some(v) = self.lock().get(name).filter(|v| fresh(v)) {
            return v.clone();
        }
        // Computed outside the lock (another reader may compute it too: the
        // same value), and outside any request scope: the ids it interns
        // outlive the request.
        let v = outside_request_scope(make);
        let mut map = self.lock();
        map.remove(name);
        if map.len() >= limit {
            evict_one(&mut map);
        }
        map.insert(name.to_string(), v.clone());
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, V>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn evict_one<K: Clone + Eq + Hash, V>(map: &mut HashMap<K, V>) {
    if let Some(k) = map.keys().next().cloned() {
        map.remove(&k);
    }
}

/// [`Facts`] read from (and filling) a namespace's cache.
struct Cached<'a> {
    ns: &'a Namespace,
    grantees: &'a Grantees,
    now: Timestamp,
}

impl Facts for Cached<'_> {
    /// Kept facts answer only inside their steady span: past a membership's
    /// end (or before one, for a clock set back) they are made again at `now`.
    fn member(&self, m: &MemberDef, now: Timestamp) -> Arc<MemberFacts> {
        self.ns.decisions.members.get_fresh_or_insert(
            &m.name,
            MEMBER_FACTS,
            |f| f.steady.contains(now),
            || {
                Arc::new(decision::member_facts(
                    &self.ns.state,
                    self.grantees,
                    m,
                    now,
                ))
            },
        )
    }

    fn api_key(&self, k: &ApiKeyDef) -> Arc<KeyFacts> {
        self.ns
            .decisions
            .keys
            .get_or_insert(&k.name, KEY_FACTS, || {
                Arc::new(decision::key_facts(&self.ns.state, k))
            })
    }

    fn mapped(&self, user: &str, groups: &[String]) -> Arc<RequesterView> {
        self.ns.requester(user, groups, self.now)
    }
}

impl Namespace {
    /// The core's [`decision::check`] on this snapshot, with what it derives
    /// from the state kept until the namespace changes.
    pub fn check(&self, principal: Principal, need: &Need, now: Timestamp) -> Answer {
        let grantees = self.grantees();
        let facts = Cached {
            ns: self,
            grantees: &grantees,
            now,
        };
        check_with(&self.state, &grantees, &facts, principal, need, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::Service;
    use crate::core::change::Def;
    use crate::core::decision::Verb;
    use crate::core::effective::resolve_grantees;
    use crate::core::model::{AccessEntry, GroupDef, Kind, OrgState};
    use crate::core::privilege::{AccessLevel, ResourceLevel, spec};

    #[test]
    fn the_cache_is_bounded() {
        let b: Bounded<u32> = Bounded::default();
        for i in 0..10u32 {
            assert_eq!(b.get_or_insert(&i.to_string(), 4, || i), i);
        }
        assert_eq!(b.len(), 4);
        assert_eq!(b.get_or_insert("9", 4, || 99), 9, "the newest is kept");
    }

    fn group(name: &str, level: AccessLevel, access: Vec<AccessEntry>) -> GroupDef {
        GroupDef {
            name: name.into(),
            privileges: vec![spec(Service::Content, "Sources", level)],
            access,
            ..GroupDef::default()
        }
    }

    fn state() -> OrgState {
        let mut s = OrgState::default();
        s.groups.insert(
            "editors".into(),
            Arc::new(group("editors", AccessLevel::Edit, vec![])),
        );
        s.members.insert(
            "ann".into(),
            Arc::new(MemberDef {
                name: "ann".into(),
                groups: vec!["editors".into()],
                accepted: true,
                ..MemberDef::default()
            }),
        );
        s.api_keys.insert(
            "k".into(),
            Arc::new(ApiKeyDef {
                name: "k".into(),
                enabled: true,
                privileges: vec![spec(Service::Content, "Sources", AccessLevel::View)],
                ..ApiKeyDef::default()
            }),
        );
        s
    }

    /// Asks the cached and the uncached check; they must agree.
    fn ask(ns: &Namespace, p: Principal, verb: Verb, target: &str) -> Answer {
        let need = Need::parse(verb, target).unwrap();
        let now = Timestamp::now();
        let cached = ns.check(p, &need, now);
        let uncached = decision::check(&ns.state, &resolve_grantees(&ns.state), p, &need, now);
        assert_eq!(cached, uncached);
        cached
    }

    #[test]
    fn a_change_drops_the_facts() {
        let mut ns = Namespace::new(state());
        let ann = Principal::Member("ann");
        let key = Principal::ApiKey("k");
        assert!(ask(&ns, ann, Verb::Edit, "Content/Sources/jira").allowed);
        assert!(!ask(&ns, key, Verb::Edit, "Content/Sources/g2").allowed);
        assert_eq!(ns.decisions.members.len(), 1);

        // The group loses Edit: ann's cached facts must not survive it.
        let view = group("editors", AccessLevel::View, vec![]);
        ns.put(Kind::Group, "editors", Some(Def::Group(view)), None);
        assert!(!ask(&ns, ann, Verb::Edit, "Content/Sources/jira").allowed);

        // A new group's access list grants the key Edit on it.
        let entry = AccessEntry {
            group: None,
            api_key: Some("k".into()),
            level: ResourceLevel::Edit,
        };
        let g2 = group("g2", AccessLevel::View, vec![entry]);
        ns.put(Kind::Group, "g2", Some(Def::Group(g2)), None);
        let a = ask(&ns, key, Verb::Edit, "Organization/Groups/g2");
        assert_eq!(a.granted_by, ["access list of Group g2"], "{a:?}");

        // ann leaves the group.
        let mut ann_def = (*ns.state.members["ann"]).clone();
        ann_def.groups.clear();
        ns.put(Kind::Member, "ann", Some(Def::Member(ann_def)), None);
        assert!(!ask(&ns, ann, Verb::View, "Content/Sources").allowed);
    }
}
