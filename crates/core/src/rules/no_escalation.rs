//! NoEscalation: a requester grants only what their own privileges cover,
//! whatever the path. Three paths have files of their own: a disabled key
//! enabled again (`key_re_enabled.rs`), a deletion a re-creation would
//! widen (`deletion_widens.rs`) and a key's search hub removed or changed
//! (`search_hub.rs`).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::deletion_widens::deletion_widens;
use super::holdings::{granted, holds};
use super::key_re_enabled::key_re_enabled;
use super::review_grants::review_grants;
use super::search_hub::search_hub_widened;
use super::{Change, Object, Requester, Rule, Violation, group_names, member, violation};
use crate::effective::{Grantees, Via, extends, member_groups, membership_end};
use crate::model::{MemberDef, OrgState};
use crate::privilege::PrivilegeSet;
use crate::review::{suspended_from, suspends};

/// NoEscalation: a requester grants only what their own privileges cover, whatever
/// the path (docs/rules.md, docs/security.md):
/// - a group's or API key's privileges and access lists: what the change adds,
///   including, on a create, what other objects' access lists already grant
///   the name (so edit rights on a group allow renaming it without holding all
///   it grants, and a re-created name inherits nothing for free);
/// - an identity set added to a group brings in whoever it matches: it needs
///   everything the group holds;
/// - a member newly in a group, by invitation or identity set, or a member
///   whose identity, claims, acceptance or Kubernetes subjects change: it
///   needs everything each such group holds (access-list grants included);
///   invitations to groups that do not exist are refused, not skipped;
/// - a membership whose end is extended or removed (`spec.until`,
///   `spec.groupUntil`) is granted again: it needs everything the group
///   holds, and nobody extends a membership of their own (their privileges
///   include the very membership);
/// - a disabled API key enabled again: everything it holds (`key_re_enabled`);
/// - an API key's search hub removed or changed: its Search/ExecuteQueries,
///   which then reaches other hubs (`search_hub.rs`);
/// - a suspension lifted or postponed (an access review recorded or deleted,
///   a group's cadence, the Organization's review settings): everything the
///   group holds, and never the requester's own membership
///   (`review_grants.rs`).
///
/// A requester who holds anything through a membership with an end grants
/// only what they hold without one ([`durable`]): a grant outlives the
/// granter's window, and would otherwise let them keep, by another path (a
/// second Member with their subject, privileges added to a group they stay
/// in), what their own membership gives only until its end.
pub fn no_escalation(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    let Some(now_held) = requester.privileges() else {
        return Vec::new();
    };
    let durable = durable(state, grantees, requester);
    let mine = durable.as_ref().unwrap_or(now_held);
    let mut out = Vec::new();
    if matches!(change.new, Some(Object::Group(_)) | Some(Object::ApiKey(_))) {
        let before = granted(state, change.old, change.name);
        let added = before.missing(&granted(state, change.new, change.name));
        let lacking = mine.missing(&added);
        if !lacking.is_empty() {
            let template = match change.new {
                Some(Object::Group(g)) => g
                    .template
                    .map(|t| format!(" (template {t:?} is granted only if you hold all of it)")),
                Some(Object::ApiKey(k)) => k
                    .template
                    .map(|t| format!(" (template {t:?} is granted only if you hold all of it)")),
                _ => None,
            };
            out.push(violation(
                Rule::NoEscalation,
                "spec.privileges",
                format!(
                    "{} cannot grant privileges they do not hold{}; missing: {lacking}. Remove these from the {} or ask someone who holds them",
                    requester.describe(),
                    template.unwrap_or_default(),
                    change.new.map(|o| o.kind().as_str()).unwrap_or_default(),
                ),
            ));
        }
    }
    // On a create the check above already asked for all the group holds.
    if let (Some(Object::Group(old)), Some(Object::Group(new))) = (change.old, change.new) {
        let old_sets = &old.identity_sets[..];
        if new.identity_sets.iter().any(|s| !old_sets.contains(s)) {
            let lacking = mine.missing(&holds(state, change.new, change.name));
            if !lacking.is_empty() {
                out.push(violation(
                    Rule::NoEscalation,
                    "spec.identitySets",
                    format!(
                        "{} cannot add an identity set to group '{}': it makes everyone it matches a member, with everything the group holds, and they lack: {lacking}",
                        requester.describe(),
                        change.name
                    ),
                ));
            }
        }
    }
    out.extend(key_re_enabled(state, change, requester, mine));
    out.extend(search_hub_widened(change, requester, mine));
    out.extend(deletion_widens(state, change, requester, mine));
    out.extend(review_grants(state, grantees, change, requester, mine));
    if let Some(Object::Member(new)) = change.new {
        out.extend(member_escalation(
            state, grantees, change, new, requester, mine,
        ));
    }
    if durable.is_some() {
        for v in &mut out {
            v.message.push_str(
                " (what you hold through a membership with an end, or one an overdue access review suspends, does not count: a grant would outlive it)",
            );
        }
    }
    out
}

fn member_escalation(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    new: &MemberDef,
    requester: &Requester,
    mine: &PrivilegeSet,
) -> Vec<Violation> {
    let old = member(change.old);
    let after = group_names(state, Some(new));
    let before = group_names(state, old);
    let extended = extended_memberships(state, old, new);
    let newly: BTreeSet<&String> = if member_granted_anew(old, new) {
        after.iter().collect()
    } else {
        after.difference(&before).chain(extended.iter()).collect()
    };
    // A dangling invitation kept from before, on a member whose holder does
    // not change, grants nothing now. Handed to someone new (a subject, an
    // identity, an acceptance), it would hand them whatever the group brings
    // when it is created again: that is granting what nobody can judge.
    let anew = member_granted_anew(old, new);
    let invited_before = |g: &String| !anew && old.is_some_and(|o| o.groups.contains(g));
    let mut out = Vec::new();
    if let Requester::Members { members, .. } = requester
        && !extended.is_empty()
        && members.iter().any(|m| m == change.name)
    {
        out.push(violation(
            Rule::NoEscalation,
            "spec.until",
            format!(
                "{} cannot extend their own membership (of group {}): extending an end is a grant, and a member does not grant themselves; ask someone else who holds the group's privileges",
                requester.describe(),
                extended.iter().map(|g| format!("'{g}'")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for group in newly {
        let Some(holds) = grantees.groups.get(group) else {
            if !invited_before(group) {
                out.push(violation(
                    Rule::NoEscalation,
                    "spec.groups",
                    format!(
                        "group '{group}' does not exist in this organization; invite members only to existing groups \
                         (a member waiting for a group would join it, with whatever it grants, the moment someone creates it)"
                    ),
                ));
            }
            continue;
        };
        let lacking = mine.missing(holds);
        if !lacking.is_empty() {
            out.push(violation(
                Rule::NoEscalation,
                "spec.groups",
                format!(
                    "{} cannot make member '{}' hold group '{group}' (by invitation, identity set or a change of who the member is), which grants privileges they do not hold; missing: {lacking}",
                    requester.describe(),
                    change.name
                ),
            ));
        }
    }
    out
}

/// What the requester's members hold through memberships without an end,
/// when some membership of theirs has one (`None`: none has, and what they
/// hold now is all durable). Time plays no part: an accepted member is
/// active, and a membership with an end, passed or not, counts for nothing.
/// A membership an overdue access review suspends, now or later (not
/// confirmed by its group's last review, under Suspend), has an end: its
/// suspension.
fn durable(state: &OrgState, grantees: &Grantees, requester: &Requester) -> Option<PrivilegeSet> {
    let Requester::Members { members, .. } = requester else {
        return None;
    };
    let mine: Vec<&MemberDef> = members
        .iter()
        .filter_map(|m| state.members.get(m))
        .map(Arc::as_ref)
        .collect();
    // A membership an overdue review suspends (or will) has an end too: its
    // suspension instant (`review::suspended_from`).
    let reviewed = suspends(state);
    let bounded = |m: &MemberDef, g: &str, via| {
        membership_end(m, g, via, jiff::Timestamp::UNIX_EPOCH).is_some()
            || (reviewed && suspended_from(state, m, g).is_some())
    };
    let groups: Vec<(&MemberDef, Vec<(String, Via)>)> =
        mine.iter().map(|m| (*m, member_groups(state, m))).collect();
    if !groups
        .iter()
        .any(|(m, gs)| gs.iter().any(|(g, via)| bounded(m, g, *via)))
    {
        return None;
    }
    let mut set = PrivilegeSet::new();
    for (m, gs) in groups.into_iter().filter(|(m, _)| m.accepted) {
        for (g, via) in gs {
            if !bounded(m, &g, via)
                && let Some(holds) = grantees.groups.get(&g)
            {
                set.merge_in(holds);
            }
        }
    }
    Some(set)
}

/// The groups the member stays in whose membership now ends later, or no
/// longer ends ([`extends`]). Durations count from the Member's creation on
/// both sides; for a manifest not applied yet, from the same instant.
pub(super) fn extended_memberships(
    state: &OrgState,
    old: Option<&MemberDef>,
    new: &MemberDef,
) -> BTreeSet<String> {
    let Some(old) = old else {
        return BTreeSet::new();
    };
    let start = old
        .invited_at
        .or(new.invited_at)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let before: std::collections::BTreeMap<String, _> =
        member_groups(state, old).into_iter().collect();
    member_groups(state, new)
        .into_iter()
        .filter(|(g, via)| {
            before.get(g).is_some_and(|was| {
                extends(
                    membership_end(old, g, *was, start),
                    membership_end(new, g, *via, start),
                )
            })
        })
        .map(|(g, _)| g)
        .collect()
}

/// Does the change hand the member's privileges to someone who did not hold
/// them: a new member, a new subject, a new identity or claim, an acceptance?
/// Then every group the member is in is granted anew.
fn member_granted_anew(old: Option<&MemberDef>, new: &MemberDef) -> bool {
    let Some(old) = old else { return true };
    old.identity != new.identity
        || old.sso_groups != new.sso_groups
        || old.salesforce_profile != new.salesforce_profile
        || (!old.accepted && new.accepted)
        || new.subjects.iter().any(|s| !old.subjects.contains(s))
}

#[cfg(test)]
mod cases {
    use crate::model::{GroupDef, IdentitySet, MemberDef};
    use crate::privilege::AccessLevel::{Edit, View};
    use crate::rules::Rule::NoEscalation;
    use crate::rules::table::{
        Def, Verdict::*, Who::*, create, group, org, privilege, run, update,
    };
    use std::sync::Arc;

    fn with_identity_set(g: &GroupDef) -> GroupDef {
        GroupDef {
            identity_sets: vec![IdentitySet {
                open_id_domain: None,
                sso_group: Some("everyone".into()),
                salesforce_profile: None,
            }],
            ..g.clone()
        }
    }

    #[test]
    fn table() {
        let s = org();
        let viewer = s.members["viewer"].clone();
        let promoted = MemberDef {
            groups: vec!["viewers".into(), "administrators".into()],
            ..(*viewer).clone()
        };
        let managers = &s.groups["group-managers"];
        let admins = &s.groups["administrators"];
        run(vec![
            (
                "a group manager cannot grant what they do not hold",
                User("gm"),
                create(Def::Group(group(
                    "g",
                    vec![privilege("Content", "Sources", Edit)],
                ))),
                Refused(NoEscalation),
            ),
            (
                "a group manager grants what they hold",
                User("gm"),
                create(Def::Group(group(
                    "h",
                    vec![privilege("Organization", "Organization", View)],
                ))),
                Admitted,
            ),
            (
                "a group manager cannot make a member join Administrators",
                User("gm"),
                update(
                    Def::Member(Arc::unwrap_or_clone(viewer)),
                    Def::Member(promoted),
                ),
                Refused(NoEscalation),
            ),
            (
                "an identity set on a group the requester out-ranks grants nothing new",
                User("gm"),
                update(
                    Def::Group((*(*managers)).clone()),
                    Def::Group(with_identity_set(managers)),
                ),
                Admitted,
            ),
            (
                "an identity set on Administrators would pull members into what gm does not hold",
                User("gm"),
                update(
                    Def::Group((*(*admins)).clone()),
                    Def::Group(with_identity_set(admins)),
                ),
                Refused(NoEscalation),
            ),
        ]);
    }
}
