//! RequiredPrivileges: what a change requires of its requester ([`required`]):
//! Can Create to create, Edit on the object to change or delete it, Groups
//! Edit domain-wide for the organization's members, Edit on each group a
//! member is invited to, joins or leaves, Organization/Activities: View with any Groups
//! edit, every privilege to delete the Organization.

use super::{
    Change, Object, Operation, Requester, Rule, Violation, group_names, member, violation,
};
use crate::builtin;
use crate::catalog::{self, DomainId};
use crate::model::{MemberDef, OrgState};
use crate::privilege::{Abilities, Grant, Level, PrivilegeSet};

/// RequiredPrivileges: creating needs Can Create, changing or deleting needs Edit on the object.
pub fn required_privileges(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    let Some(mine) = requester.privileges() else {
        return Vec::new();
    };
    required(state, change)
        .into_iter()
        .filter_map(|(need, what)| {
            let lacking = mine.missing(&need);
            (!lacking.is_empty()).then(|| {
                violation(
                    Rule::RequiredPrivileges,
                    "metadata.name",
                    format!(
                        "{} needs {need} to allow {what}; you lack: {lacking}. Ask an administrator to grant it to one of your groups, or to add this object's access list entry for your group",
                        requester.describe()
                    ),
                )
            })
        })
        .collect()
}

/// What a change requires of its requester (RequiredPrivileges), with a
/// phrase for the denial.
///
/// Every change that edits groups (Edit on Groups, domain-wide or on one
/// group) also needs Organization/Activities: View: the platform asks both
/// to edit groups (docs/security.md, "Every path to a privilege, and what it needs"). It is a requirement of its own,
/// so the denial names it apart from the Groups one.
pub fn required(state: &OrgState, change: &Change) -> Vec<(PrivilegeSet, String)> {
    let mut out = required_by_object(state, change);
    let view = activities_view();
    if out
        .iter()
        .any(|(need, _)| edits_groups(need) && !need.covers(&view))
    {
        out.push((
            view,
            "editing groups (the platform asks Organization/Activities: View together with Organization/Groups: Edit)".into(),
        ));
    }
    out
}

/// Organization/Activities: View.
pub fn activities_view() -> PrivilegeSet {
    let mut s = PrivilegeSet::new();
    s.set(
        *catalog::ACTIVITIES,
        Grant {
            level: Level::View,
            ..Grant::default()
        },
    );
    s
}

/// Does this requirement ask for Edit on Groups, domain-wide or on a group?
fn edits_groups(need: &PrivilegeSet) -> bool {
    need.get(*catalog::GROUPS).is_some_and(|g| {
        g.level == Level::Edit || g.resources.iter().any(|(_, l)| l == Level::Edit)
    })
}

fn required_by_object(state: &OrgState, change: &Change) -> Vec<(PrivilegeSet, String)> {
    let groups = *catalog::GROUPS;
    let keys = *catalog::API_KEYS;
    let name = change.name;
    let op = change.operation;
    match (change.old.or(change.new), op) {
        (Some(Object::Group(_)), Operation::Create) => {
            vec![(can_create(groups), "creating a group".into())]
        }
        (Some(Object::Group(_)), Operation::Update) => {
            vec![(edit_on(groups, name), format!("editing group '{name}'"))]
        }
        (Some(Object::Group(_)), Operation::Delete) => {
            vec![(edit_on(groups, name), format!("deleting group '{name}'"))]
        }
        (Some(Object::ApiKey(_)), Operation::Create) => {
            vec![(can_create(keys), "creating an API key".into())]
        }
        (Some(Object::ApiKey(_)), Operation::Update) => {
            vec![(edit_on(keys, name), format!("editing API key '{name}'"))]
        }
        (Some(Object::ApiKey(_)), Operation::Delete) => {
            vec![(edit_on(keys, name), format!("deleting API key '{name}'"))]
        }
        (Some(Object::Organization(_)), Operation::Delete) => vec![(
            builtin::full_access(),
            "deleting the Organization (an organization-level act: it needs every privilege, as Administrators hold)".into(),
        )],
        (Some(Object::Organization(_)), _) => {
            vec![(
                edit_domain(*catalog::ORGANIZATION),
                "changing the Organization's settings".into(),
            )]
        }
        (Some(Object::Member(_)), _) => member_required(state, change),
        (Some(Object::AccessReview(r)), _) => vec![(
            edit_on(groups, &r.group),
            format!("recording an access review of group '{}'", r.group),
        )],
        (None, _) => Vec::new(),
    }
}

/// RequiredPrivileges for members. Creating a member is an invitation: Edit
/// on each group it joins (by invitation or identity set) when it carries
/// nothing else. Creating one already accepted, bound to Kubernetes subjects
/// or with identity-provider claims, or in no group, deleting one or changing
/// who a member is needs Edit on Groups domain-wide (the platform's "update
/// organization members"; docs/rules.md, "Inviting members");
/// adding or removing a member to or from a group, by invitation or by an
/// identity set that starts or stops matching, is an edit of that group; any
/// other update is an edit of every group the member is in.
fn member_required(state: &OrgState, change: &Change) -> Vec<(PrivilegeSet, String)> {
    let groups = *catalog::GROUPS;
    let name = change.name;
    let members_edit = |what: String| (edit_domain(groups), what);
    let (old, new) = (member(change.old), member(change.new));
    match (old, new) {
        (None, Some(n)) => {
            // An invitation: Edit on each group it brings the member into
            // (the platform's `GROUP EDIT {groupId}` to invite to a group).
            // Who the member is — acceptance, Kubernetes subjects,
            // identity-provider claims — is an update of the organization's
            // members (`GROUP EDIT *`), as on an update.
            let joins = group_names(state, Some(n));
            if invitation_only(n) && !joins.is_empty() {
                return joins
                    .iter()
                    .map(|g| {
                        (
                            edit_on(groups, g),
                            format!(
                                "inviting member '{name}' to group '{g}' (an edit of that group)"
                            ),
                        )
                    })
                    .collect();
            }
            vec![members_edit(format!(
                "creating member '{name}' {} (an update of the organization's members)",
                if joins.is_empty() {
                    "in no group"
                } else {
                    "with acceptance, Kubernetes subjects or identity-provider claims"
                }
            ))]
        }
        (Some(_), None) => vec![members_edit(format!(
            "deleting member '{name}' (an update of the organization's members)"
        ))],
        (Some(o), Some(n)) => {
            if member_who_changed(o, n) {
                return vec![members_edit(format!(
                    "changing who member '{name}' is (identity, identity-provider claims, acceptance or Kubernetes subjects)"
                ))];
            }
            let (before, after) = (group_names(state, Some(o)), group_names(state, Some(n)));
            let mut out: Vec<(PrivilegeSet, String)> = after
                .difference(&before)
                .map(|g| {
                    (
                        edit_on(groups, g),
                        format!("adding a member to group '{g}' (an edit of that group)"),
                    )
                })
                .chain(before.difference(&after).map(|g| {
                    (
                        edit_on(groups, g),
                        format!("removing a member from group '{g}' (an edit of that group)"),
                    )
                }))
                .collect();
            if out.is_empty() {
                // Labels, annotations and the like: an edit of the member,
                // which belongs to the groups it is in.
                out = before
                    .iter()
                    .map(|g| {
                        (
                            edit_on(groups, g),
                            format!("editing member '{name}' of group '{g}'"),
                        )
                    })
                    .collect();
                if out.is_empty() {
                    out.push(members_edit(format!("editing member '{name}'")));
                }
            }
            out
        }
        (None, None) => Vec::new(),
    }
}

/// A new member carries only an invitation: not accepted, no Kubernetes
/// subjects, no identity-provider claims.
fn invitation_only(m: &MemberDef) -> bool {
    !m.accepted
        && m.subjects.is_empty()
        && m.sso_groups.is_empty()
        && m.salesforce_profile.is_none()
}

/// Who a member is changed: their identity, the identity provider's claims,
/// their acceptance or the Kubernetes subjects that act as them. Such a change
/// is an update of the organization's members, not of one group.
fn member_who_changed(old: &MemberDef, new: &MemberDef) -> bool {
    old.identity != new.identity
        || old.sso_groups != new.sso_groups
        || old.salesforce_profile != new.salesforce_profile
        || old.accepted != new.accepted
        || old.subjects != new.subjects
}

/// Privileges an action needs: Can Create on a domain, or Edit on one object.
fn can_create(domain: DomainId) -> PrivilegeSet {
    let mut s = PrivilegeSet::new();
    s.set(
        domain,
        Grant {
            abilities: Abilities::CREATE,
            ..Grant::default()
        },
    );
    s
}

fn edit_on(domain: DomainId, object: &str) -> PrivilegeSet {
    let mut s = PrivilegeSet::new();
    s.add_resource(domain, object, Level::Edit);
    s
}

fn edit_domain(domain: DomainId) -> PrivilegeSet {
    let mut s = PrivilegeSet::new();
    s.set(
        domain,
        Grant {
            level: Level::Edit,
            ..Grant::default()
        },
    );
    s
}

#[cfg(test)]
mod cases {
    use crate::privilege::AccessLevel::View;
    use crate::rules::Rule::RequiredPrivileges;
    use crate::rules::table::{
        Def, Verdict::*, Who::*, create, delete, group, org, privilege, run,
    };

    /// A new member invited to `groups`, accepted or not, bound to nobody.
    fn invitee(groups: &[&str], accepted: bool) -> crate::model::MemberDef {
        crate::model::MemberDef {
            name: "newcomer".into(),
            identity: crate::model::MemberIdentity {
                provider: crate::model::Provider::Email,
                username: "newcomer@example.com".into(),
            },
            groups: groups.iter().map(|g| g.to_string()).collect(),
            accepted,
            ..crate::model::MemberDef::default()
        }
    }

    #[test]
    fn table() {
        let g = || {
            Def::Group(group(
                "g",
                vec![privilege("Organization", "Organization", View)],
            ))
        };
        let org = Def::Organization(org().org.expect("an organization"));
        run(vec![
            (
                "creating a group needs Can Create on Groups: a viewer lacks it",
                User("viewer"),
                create(g()),
                Refused(RequiredPrivileges),
            ),
            (
                "creating a group needs Can Create on Groups: a group manager holds it",
                User("gm"),
                create(g()),
                Admitted,
            ),
            (
                "inviting a member to a group needs Edit on that group: a group manager holds it",
                User("gm"),
                create(Def::Member(invitee(&["viewers"], false))),
                Admitted,
            ),
            (
                "inviting a member needs Edit on the group, not on all groups: Edit on viewers is enough",
                User("viewers-editor"),
                create(Def::Member(invitee(&["viewers"], false))),
                Admitted,
            ),
            (
                "Edit on viewers does not invite to group-managers",
                User("viewers-editor"),
                create(Def::Member(invitee(&["group-managers"], false))),
                Refused(RequiredPrivileges),
            ),
            (
                "creating a member already accepted is an update of the organization's members: Edit on one group is not enough",
                User("viewers-editor"),
                create(Def::Member(invitee(&["viewers"], true))),
                Refused(RequiredPrivileges),
            ),
            (
                "deleting the Organization needs every privilege",
                User("gm"),
                delete(org),
                Refused(RequiredPrivileges),
            ),
        ]);
    }
}
