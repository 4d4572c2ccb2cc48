//! Duplicate: a group copied from another (`spec.duplicateOf`) is admitted
//! only if the requester strictly out-ranks the source — or, for the
//! Administrators group, holds everything it holds.
//!
//! Two sentences of seed 001 (docs/sources.md) decide it: "You can only
//! duplicate groups that are granted fewer privileges than yours" (holding
//! four privileges, "you can therefore duplicate groups that have three or
//! fewer"), and "The Administrators group can't be deleted, and its
//! privileges can't be edited. You can however duplicate the Administrators
//! group". Nobody holds more than Administrators, so strictness alone would
//! make the second sentence false. The exception is safe: a copy grants
//! nothing its creator does not hold when the creator holds every privilege
//! of the source (the no-escalation invariant needs covering, not more), and
//! it is limited to Administrators so that the first sentence's example keeps
//! holding for every other group (docs/rules.md, "Duplicate").

use super::{Change, Object, Operation, Requester, Rule, Violation, violation};
use crate::builtin::BuiltinGroup;
use crate::effective::{Grantees, group_spec_privileges};
use crate::model::OrgState;

/// Duplicate: a duplicate is admitted only if the requester strictly out-ranks the source.
pub fn duplicate(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    let (Operation::Create, Some(Object::Group(g)), Some(mine)) =
        (change.operation, change.new, requester.privileges())
    else {
        return Vec::new();
    };
    let Some(src_name) = &g.duplicate_of else {
        return Vec::new();
    };
    let Some(src) = state.groups.get(src_name) else {
        return Vec::new();
    };
    let source = grantees
        .groups
        .get(src_name)
        .cloned()
        .unwrap_or_else(|| group_spec_privileges(src));
    let administrators = src.builtin == Some(BuiltinGroup::Administrators);
    if mine.strictly_covers(&source) || (administrators && mine.covers(&source)) {
        return Vec::new();
    }
    let lacking = mine.missing(&source);
    let message = if administrators {
        format!(
            "{} may duplicate the Administrators group only holding every privilege it holds; you lack: {lacking}",
            requester.describe()
        )
    } else {
        let detail = if lacking.is_empty() {
            "your privileges equal the source group's; a duplicate needs strictly more privileges than the group it copies (only Administrators may be duplicated holding exactly its privileges)".to_string()
        } else {
            format!("you lack: {lacking}")
        };
        format!(
            "{} may duplicate only groups with fewer privileges than their own; group '{src_name}' is not strictly covered: {detail}",
            requester.describe()
        )
    };
    vec![violation(Rule::Duplicate, "spec.duplicateOf", message)]
}

#[cfg(test)]
mod cases {
    use crate::model::GroupDef;
    use crate::rules::Rule::Duplicate;
    use crate::rules::table::{Def, Verdict::*, Who::*, create, group, run};

    #[test]
    fn table() {
        let copy = |of: &str| {
            Def::Group(GroupDef {
                duplicate_of: Some(of.into()),
                ..group(&format!("{of}-copy"), Vec::new())
            })
        };
        run(vec![
            (
                "duplicating Administrators needs every privilege it holds: a group manager lacks some",
                User("gm"),
                create(copy("administrators")),
                Refused(Duplicate),
            ),
            (
                "an administrator holds exactly Administrators' privileges and duplicates it (seed 001)",
                User("olivia"),
                create(copy("administrators")),
                Admitted,
            ),
            (
                "holding exactly another group's privileges is not enough to duplicate it (seed 001's example)",
                User("gm"),
                create(copy("group-managers")),
                Refused(Duplicate),
            ),
            (
                "a group manager out-ranks viewers and duplicates it",
                User("gm"),
                create(copy("viewers")),
                Admitted,
            ),
        ]);
    }
}
