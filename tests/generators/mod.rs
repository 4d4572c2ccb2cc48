//! Generators shared by the property tests: valid privileges over the catalog,
//! and the proptest strategies of random organizations' parts.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeSet;

use orgaccess::core::catalog::{CATALOG, Create};
use orgaccess::core::model::AccessEntry;
use orgaccess::core::privilege::{AccessLevel, PrivilegeSpec, ResourceAccess, ResourceLevel, spec};
use proptest::prelude::*;

/// Up to `most - 1` valid privileges, each on a different domain of
/// `domains` (indices into the catalog), Custom levels naming `names`.
pub fn privileges(
    domains: Vec<usize>,
    names: &'static [&'static str],
    most: usize,
) -> impl Strategy<Value = Vec<PrivilegeSpec>> {
    let entry = (
        prop::sample::select(domains),
        any::<u8>(),
        any::<bool>(),
        prop::collection::vec((0..names.len(), any::<bool>()), 1..3),
    );
    prop::collection::vec(entry, 0..most).prop_map(move |entries| {
        let mut seen = BTreeSet::new();
        entries
            .into_iter()
            .filter(|(i, ..)| seen.insert(*i))
            .map(|(i, p, c, r)| privilege(names, i, p, c, r))
            .collect()
    })
}

/// An access list of up to two entries, each naming a group of `groups` or
/// a key of `keys`, at View or Edit.
pub fn access_list(
    groups: &'static [&'static str],
    keys: &'static [&'static str],
) -> impl Strategy<Value = Vec<AccessEntry>> {
    let entry = (any::<bool>(), 0..5usize, any::<bool>()).prop_map(move |(group, i, edit)| {
        let level = if edit {
            ResourceLevel::Edit
        } else {
            ResourceLevel::View
        };
        AccessEntry {
            group: group.then(|| groups[i % groups.len()].into()),
            api_key: (!group).then(|| keys[i % keys.len()].into()),
            level,
        }
    });
    prop::collection::vec(entry, 0..3)
}

/// One valid privilege on catalog domain `i`, chosen by `pick`; a Custom level
/// names resources from `names` (index modulo its length).
pub fn privilege(
    names: &[&str],
    i: usize,
    pick: u8,
    create: bool,
    res: Vec<(usize, bool)>,
) -> PrivilegeSpec {
    let d = &CATALOG[i];
    let o = d.offers;
    let mut options = vec![];
    if o.view {
        options.push(AccessLevel::View);
    }
    if o.edit {
        options.push(AccessLevel::Edit);
    }
    if o.allowed {
        options.push(AccessLevel::Allowed);
    }
    if o.push {
        options.push(AccessLevel::Push);
        options.push(AccessLevel::PushAndView);
    }
    if o.custom.is_some() {
        options.push(AccessLevel::Custom);
        options.push(AccessLevel::Custom);
    }
    let level = options[pick as usize % options.len()];
    let mut s = spec(d.service, d.name, level);
    if level == AccessLevel::Custom {
        let mut seen = std::collections::BTreeSet::new();
        s.resources = res
            .into_iter()
            .filter(|(r, _)| seen.insert(*r))
            .map(|(r, edit)| ResourceAccess {
                name: names[r % names.len()].into(),
                level: if edit {
                    ResourceLevel::Edit
                } else {
                    ResourceLevel::View
                },
            })
            .collect();
    }
    if create && o.create == Create::Choosable && level != AccessLevel::Edit {
        s.can_create = Some(true);
    }
    s
}
