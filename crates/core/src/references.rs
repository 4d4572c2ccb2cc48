//! The names an object refers to that its organization does not hold: a
//! member's invitations, an access list's entries, a group's `duplicateOf`.
//! The warnings on an allowed change (`warnings.rs`), the advisor's
//! `unresolved-reference` finding (`advice.rs`) and the controller's
//! `ResolvedRefs` condition all read [`unresolved_references`].

use crate::model::{AccessEntry, Kind, OrgState};
use crate::rules::Object;

/// A name an object refers to that its organization does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// Where the name is, e.g. `spec.groups[1]` or `spec.access[0].apiKey`.
    pub field: String,
    /// [`Kind::Group`], [`Kind::ApiKey`], or [`Kind::Member`] (an
    /// AccessReview's confirmed members).
    pub kind: Kind,
    pub name: String,
}

impl Unresolved {
    /// `group NAME` or `API key NAME`, as status messages say it.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::ApiKey => format!("API key {}", self.name),
            Kind::Member => format!("member {}", self.name),
            _ => format!("group {}", self.name),
        }
    }
}

/// The groups and API keys that `object` (named `name`) refers to and `state`
/// does not hold, in field order: a member's groups (its invitations), an
/// access list's entries, a group's `duplicateOf` and owners, an access
/// review's group and confirmed members. An access entry naming the
/// object itself resolves (the object exists once the change is made).
pub fn unresolved_references(state: &OrgState, object: Object, name: &str) -> Vec<Unresolved> {
    let exists = |kind: Kind, n: &str| match kind {
        Kind::Group => {
            state.groups.contains_key(n) || (n == name && matches!(object, Object::Group(_)))
        }
        Kind::Member => state.members.contains_key(n),
        _ => state.api_keys.contains_key(n) || (n == name && matches!(object, Object::ApiKey(_))),
    };
    let mut out = Vec::new();
    let mut missing = |field: String, kind: Kind, n: &str| {
        if !exists(kind, n) {
            out.push(Unresolved {
                field,
                kind,
                name: n.to_string(),
            });
        }
    };
    let access = |list: &[AccessEntry], missing: &mut dyn FnMut(String, Kind, &str)| {
        for (i, e) in list.iter().enumerate() {
            if let Some(g) = &e.group {
                missing(format!("spec.access[{i}].group"), Kind::Group, g);
            }
            if let Some(k) = &e.api_key {
                missing(format!("spec.access[{i}].apiKey"), Kind::ApiKey, k);
            }
        }
    };
    match object {
        Object::Member(m) => {
            for (i, g) in m.groups.iter().enumerate() {
                missing(format!("spec.groups[{i}]"), Kind::Group, g);
            }
        }
        Object::Group(g) => {
            access(&g.access, &mut missing);
            if let Some(source) = &g.duplicate_of {
                missing("spec.duplicateOf".into(), Kind::Group, source);
            }
            for (i, o) in g.owners.iter().enumerate() {
                missing(format!("spec.owners[{i}]"), Kind::Member, o);
            }
        }
        Object::ApiKey(k) => access(&k.access, &mut missing),
        Object::AccessReview(r) => {
            missing("spec.group".into(), Kind::Group, &r.group);
            for (i, m) in r.confirmed.iter().enumerate() {
                missing(format!("spec.confirmed[{i}]"), Kind::Member, m);
            }
        }
        Object::Organization(_) => {}
    }
    out
}
