//! Duplicate: a group copied from another (`spec.duplicateOf`) is admitted
//! only if the requester strictly out-ranks the source.

use super::{Change, Object, Operation, Requester, Rule, Violation, violation};
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
    if mine.strictly_covers(&source) {
        return Vec::new();
    }
    let lacking = mine.missing(&source);
    let detail = if lacking.is_empty() {
        "your privileges equal the source group's; a duplicate needs strictly more privileges than the group it copies".to_string()
    } else {
        format!("you lack: {lacking}")
    };
    vec![violation(
        Rule::Duplicate,
        "spec.duplicateOf",
        format!(
            "{} may duplicate only groups with fewer privileges than their own; group '{src_name}' is not strictly covered: {detail}",
            requester.describe()
        ),
    )]
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
                "duplicating Administrators needs to out-rank it: a group manager does not",
                User("gm"),
                create(copy("administrators")),
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
