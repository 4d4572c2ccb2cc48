//! What the advisor's review of a change asks of a namespace besides its
//! objects ([`Lookups`]), kept by the index as objects come and go instead of
//! found by passes over every group per request: the groups with identity
//! sets, the duplicates of each group, who names each group or API key in an
//! access list, the Administrators group, and the groups whose privileges
//! hold Groups Edit or Activities View (brought up to date with the
//! grantees, `Namespace::invalidate`). A property test
//! (`namespace::tests::refreshed_grantees`) requires every answer to equal
//! the core's [`Scan`](crate::core::advice::Scan) after any sequence of changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::core::advice::{Counted, Lookups, oversees};
use crate::core::builtin::BuiltinGroup;
use crate::core::effective::{Grantee, Grantees};
use crate::core::model::{AccessEntry, ApiKeyDef, GroupDef};

use super::Namespace;

/// The groups and API keys whose access lists name one grantee.
#[derive(Clone, Debug, Default)]
struct Naming {
    groups: BTreeSet<String>,
    api_keys: BTreeSet<String>,
}

impl Naming {
    fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.api_keys.is_empty()
    }
}

/// The references among a namespace's groups and API keys, by name.
#[derive(Clone, Debug, Default)]
pub(super) struct Links {
    identity_set_groups: BTreeSet<String>,
    /// Source group → the groups recording it in `spec.duplicateOf`.
    duplicates: HashMap<String, BTreeSet<String>>,
    /// Named group → who names it; named API key → who names it.
    naming_groups: HashMap<String, Naming>,
    naming_keys: HashMap<String, Naming>,
    /// Groups built in as Administrators (the first by name is the one).
    administrators: BTreeSet<String>,
}

/// Who refers: a group or an API key, by name.
#[derive(Clone, Copy)]
pub(super) enum Referrer<'a> {
    Group(&'a str),
    ApiKey(&'a str),
}

impl Links {
    /// The Administrators group (the first built in as one, by name).
    pub(super) fn administrators(&self) -> Option<&String> {
        self.administrators.first()
    }

    /// The groups and the API keys whose access list names `grantee`.
    pub(super) fn naming(&self, grantee: &Grantee) -> (BTreeSet<String>, BTreeSet<String>) {
        let naming = match grantee {
            Grantee::Group(g) => self.naming_groups.get(g),
            Grantee::ApiKey(k) => self.naming_keys.get(k),
        };
        naming.map_or_else(Default::default, |n| (n.groups.clone(), n.api_keys.clone()))
    }

    /// Adds (`add`) or takes out what `group` refers to.
    pub(super) fn group(&mut self, group: &GroupDef, add: bool) {
        let name = group.name.as_str();
        set(
            &mut self.identity_set_groups,
            name,
            add && !group.identity_sets.is_empty(),
        );
        if let Some(source) = &group.duplicate_of {
            entry(&mut self.duplicates, source, name, add);
        }
        if group.builtin == Some(BuiltinGroup::Administrators) {
            set(&mut self.administrators, name, add);
        }
        self.access(Referrer::Group(name), &group.access, add);
    }

    /// Adds (`add`) or takes out what `key` refers to.
    pub(super) fn api_key(&mut self, key: &ApiKeyDef, add: bool) {
        self.access(Referrer::ApiKey(&key.name), &key.access, add);
    }

    fn access(&mut self, who: Referrer, list: &[AccessEntry], add: bool) {
        for e in list {
            for (named, map) in [
                (e.group.as_deref(), &mut self.naming_groups),
                (e.api_key.as_deref(), &mut self.naming_keys),
            ] {
                let Some(named) = named else { continue };
                let naming = map.entry(named.to_string()).or_default();
                match who {
                    Referrer::Group(g) => set(&mut naming.groups, g, add),
                    Referrer::ApiKey(k) => set(&mut naming.api_keys, k, add),
                };
                if naming.is_empty() {
                    map.remove(named);
                }
            }
        }
    }
}

/// Puts `name` in `names` or takes it out, answering whether that changed them.
fn set(names: &mut BTreeSet<String>, name: &str, present: bool) -> bool {
    if present {
        !names.contains(name) && names.insert(name.to_string())
    } else {
        names.remove(name)
    }
}

fn entry(map: &mut HashMap<String, BTreeSet<String>>, key: &str, name: &str, add: bool) {
    let names = map.entry(key.to_string()).or_default();
    set(names, name, add);
    if names.is_empty() {
        map.remove(key);
    }
}

/// The groups of `grantees` that oversee ([`oversees`]), by a pass.
pub(super) fn overseers(grantees: &Grantees) -> BTreeSet<String> {
    grantees
        .groups
        .iter()
        .filter(|(_, p)| oversees(p))
        .map(|(g, _)| g.clone())
        .collect()
}

/// Brings `overseers` up to date for the grantee entries `changed`,
/// answering whether that changed them.
pub(super) fn refresh_overseers(
    overseers: &mut BTreeSet<String>,
    grantees: &Grantees,
    changed: &[Grantee],
) -> bool {
    let mut any = false;
    for c in changed {
        if let Grantee::Group(g) = c {
            any |= set(overseers, g, grantees.groups.get(g).is_some_and(oversees));
        }
    }
    any
}

impl Lookups for Namespace {
    fn members_of(&self, group: &str, limit: usize) -> Option<BTreeSet<String>> {
        self.member_names_at_most(group, limit)
    }

    fn counted_groups(&self) -> BTreeSet<String> {
        let mut out = (*self.overseers()).clone();
        out.extend(self.links.administrators().cloned());
        out
    }

    fn counted(&self, limit: usize) -> Arc<Counted> {
        if let Some((l, c)) = &*self.counted_cache()
            && *l == limit
        {
            return c.clone();
        }
        let c = Arc::new(Counted::gather(self, limit));
        *self.counted_cache() = Some((limit, c.clone()));
        c
    }

    fn identity_set_groups(&self) -> BTreeSet<String> {
        self.links.identity_set_groups.clone()
    }

    fn duplicates_of(&self, group: &str) -> BTreeSet<String> {
        self.links
            .duplicates
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    fn naming(&self, grantee: &Grantee) -> (BTreeSet<String>, BTreeSet<String>) {
        self.links.naming(grantee)
    }
}
