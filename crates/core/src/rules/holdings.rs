//! What a group or API key holds and grants, as NoEscalation counts it
//! (`no_escalation.rs`, `key_re_enabled.rs`, `deletion_widens.rs`): its own
//! privileges and the access lists' grants, other objects' lists as the state
//! has them and its own as the change's version has it.

use super::Object;
use crate::catalog;
use crate::effective::{Grantee, api_key_spec_privileges, group_spec_privileges};
use crate::model::OrgState;
use crate::privilege::PrivilegeSet;

/// What other objects' access lists grant to a grantee in the state, leaving
/// out the list of the object under change (its old and new lists are
/// compared separately).
fn incoming_access(state: &OrgState, to: &Grantee, changed: (&str, &str)) -> PrivilegeSet {
    let mut set = PrivilegeSet::new();
    let lists = state
        .groups
        .values()
        .map(|g| ("Group", *catalog::GROUPS, &g.name, &g.access))
        .chain(
            state
                .api_keys
                .values()
                .map(|k| ("ApiKey", *catalog::API_KEYS, &k.name, &k.access)),
        );
    for (kind, domain, object, list) in lists {
        if (kind, object.as_str()) == changed {
            continue;
        }
        for e in list {
            if e.grantee().as_ref() == Some(to) {
                set.add_resource(domain, object, e.level.into());
            }
        }
    }
    set
}

/// What a group or API key holds: its own privileges (template + explicit)
/// and what access lists grant it — other objects' lists as the state has
/// them, and its own list as this version has it.
pub(super) fn holds(state: &OrgState, obj: Option<Object>, name: &str) -> PrivilegeSet {
    let (kind, grantee, mut set, own_access, domain) = match obj {
        Some(Object::Group(g)) => (
            "Group",
            Grantee::Group(name.into()),
            group_spec_privileges(g),
            &g.access[..],
            *catalog::GROUPS,
        ),
        Some(Object::ApiKey(k)) => (
            "ApiKey",
            Grantee::ApiKey(name.into()),
            api_key_spec_privileges(k),
            &k.access[..],
            *catalog::API_KEYS,
        ),
        _ => return PrivilegeSet::new(),
    };
    set.merge_in(&incoming_access(state, &grantee, (kind, name)));
    for e in own_access {
        if e.grantee().as_ref() == Some(&grantee) {
            set.add_resource(domain, name, e.level.into());
        }
    }
    set
}

/// The privileges an object grants: what it holds (see [`holds`]) and,
/// through its access list, Custom levels on itself to other grantees.
pub(super) fn granted(state: &OrgState, obj: Option<Object>, name: &str) -> PrivilegeSet {
    let mut set = holds(state, obj, name);
    let (access, domain) = match obj {
        Some(Object::Group(g)) => (&g.access[..], *catalog::GROUPS),
        Some(Object::ApiKey(k)) => (&k.access[..], *catalog::API_KEYS),
        _ => return set,
    };
    for e in access {
        set.add_resource(domain, name, e.level.into());
    }
    set
}
