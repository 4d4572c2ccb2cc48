//! AdministratorsProtected: the Administrators group is not deleted nor its
//! privileges edited while its Organization exists; the built-in marker
//! (`spec.builtIn`) belongs to the operator. Binds trusted principals too.

use super::{Change, Object, Operation, Requester, Rule, Violation, violation};
use crate::builtin::BuiltinGroup;
use crate::model::{GroupDef, OrgState};

/// AdministratorsProtected: Administrators cannot be deleted or have its privileges edited; the
/// built-in marker belongs to the operator.
///
/// Administrators goes only with its Organization: when the Organization is
/// gone or being deleted (`state.org` is `None` or `deleting`, e.g. during a
/// namespace teardown), deleting it is allowed, or the teardown would stick.
pub fn administrators_protected(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    let (old, new) = match (change.old, change.new) {
        (Some(Object::Group(o)), n) => (
            Some(o),
            n.and_then(|n| {
                if let Object::Group(g) = n {
                    Some(g)
                } else {
                    None
                }
            }),
        ),
        (None, Some(Object::Group(n))) => (None, Some(n)),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    let is_admins = |g: &GroupDef| g.builtin == Some(BuiltinGroup::Administrators);
    match (change.operation, old, new) {
        (Operation::Delete, Some(o), _)
            if is_admins(o) && state.org.as_ref().is_some_and(|org| !org.meta.deleting) =>
        {
            out.push(violation(
            Rule::AdministratorsProtected,
            "metadata.name",
            format!(
                "the Administrators group '{}' cannot be deleted; it goes only with its Organization. To take someone's access away, remove them from the group",
                o.name
            ),
        ))
        }
        (Operation::Update, Some(o), Some(n)) => {
            if is_admins(o) && (o.template != n.template || o.privileges != n.privileges) {
                out.push(violation(
                    Rule::AdministratorsProtected,
                    "spec.privileges",
                    "the privileges of the Administrators group cannot be edited; duplicate it (spec.duplicateOf: administrators) and edit the copy",
                ));
            }
            if o.builtin != n.builtin {
                out.push(violation(
                    Rule::AdministratorsProtected,
                    "spec.builtIn",
                    "spec.builtIn is set by the operator when it seeds the organization and cannot change; create a new group instead",
                ));
            }
        }
        (Operation::Create, None, Some(n)) if n.builtin.is_some() && !matches!(requester, Requester::Operator) => out.push(violation(
            Rule::AdministratorsProtected,
            "spec.builtIn",
            "only the operator creates built-in groups; remove spec.builtIn (use spec.template to start from a built-in group's privileges)",
        )),
        _ => {}
    }
    out
}

#[cfg(test)]
mod cases {
    use crate::rules::Rule::AdministratorsProtected;
    use crate::rules::table::{Def, Verdict::*, Who::*, delete, org, run, update};
    use std::sync::Arc;

    #[test]
    fn table() {
        let s = org();
        let admins = Def::Group((*s.groups["administrators"]).clone());
        let viewers = s.groups["viewers"].clone();
        let renamed = crate::model::GroupDef {
            display_name: Some("Viewers".into()),
            ..(*viewers).clone()
        };
        run(vec![
            (
                "deleting Administrators is refused, to an administrator too",
                User("olivia"),
                delete(admins),
                Refused(AdministratorsProtected),
            ),
            (
                "editing another group is admitted",
                User("olivia"),
                update(
                    Def::Group(Arc::unwrap_or_clone(viewers)),
                    Def::Group(renamed),
                ),
                Admitted,
            ),
        ]);
    }
}
