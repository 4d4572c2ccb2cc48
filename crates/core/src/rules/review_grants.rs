//! NoEscalation and RequiredPrivileges for access reviews: a change that
//! lifts or postpones the suspension of a membership grants the group
//! again, and is judged as an invitation to it (docs/access-reviews.md).
//!
//! A membership of an overdue group that its last review did not confirm is
//! suspended when the Organization says Suspend
//! ([`crate::review::membership_suspended`]). Four changes move that
//! instant later or remove it: an AccessReview recorded (it confirms some
//! members and restarts the cadence for the others) or deleted (an earlier
//! review becomes the last), a Group's `reviewEvery` lengthened or removed,
//! the Organization's `accessReviews` switched to Report or given a longer
//! grace. For each membership whose suspension instant moves later
//! ([`crate::review::suspended_from`], compared with
//! [`crate::effective::extends`] as a membership's end is), the requester
//! must hold Edit on the group (RequiredPrivileges) and everything the group
//! holds (NoEscalation), and must not be that member: nobody lifts or
//! postpones the suspension of their own membership (an owner does not
//! certify their own access; another owner does).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Change, Object, Requester, Rule, Violation, violation};
use crate::catalog;
use crate::effective::{Grantees, extends, member_groups, membership_in};
use crate::model::OrgState;
use crate::privilege::{Level, PrivilegeSet};
use crate::review::{review_state, suspended_from, suspends};

/// The state after the change, when the change can move a suspension: a
/// review recorded or deleted, a group's cadence, the Organization's review
/// settings. `None`: it cannot (or nothing is suspended before it).
fn after(state: &OrgState, change: &Change) -> Option<OrgState> {
    if !suspends(state) {
        // Nothing is ever suspended before: nothing can be lifted.
        return None;
    }
    let mut s = match (change.old, change.new) {
        (_, Some(Object::AccessReview(_))) | (Some(Object::AccessReview(_)), None) => state.clone(),
        (Some(Object::Group(o)), Some(Object::Group(n))) if o.review_every != n.review_every => {
            state.clone()
        }
        (Some(Object::Organization(o)), Some(Object::Organization(n)))
            if o.access_reviews != n.access_reviews =>
        {
            state.clone()
        }
        _ => return None,
    };
    match change.new {
        Some(Object::AccessReview(r)) => {
            s.reviews
                .insert(change.name.to_string(), Arc::new(r.clone()));
        }
        Some(Object::Group(g)) => {
            s.groups
                .insert(change.name.to_string(), Arc::new(g.clone()));
        }
        Some(Object::Organization(o)) => s.org = Some(o.clone()),
        Some(_) => return None,
        None => {
            s.reviews.remove(change.name);
        }
    }
    Some(s)
}

/// The memberships whose suspension the change lifts or postpones, by
/// group: members of the group before and after whose suspension instant
/// moves later or goes away.
pub fn lifted(state: &OrgState, change: &Change) -> BTreeMap<String, Vec<String>> {
    match after(state, change) {
        Some(after) => lifted_in(state, &after, change),
        None => BTreeMap::new(),
    }
}

fn lifted_in(state: &OrgState, after: &OrgState, change: &Change) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // A review or a cadence moves the suspensions of its group only; the
    // Organization's settings, of every group.
    let only = match (change.new.or(change.old), change.new.is_some()) {
        (Some(Object::AccessReview(r)), _) => Some(r.group.as_str()),
        (Some(Object::Group(_)), true) => Some(change.name),
        _ => None,
    };
    for m in state.members.values() {
        let groups: Vec<String> = match only {
            Some(g) => membership_in(state, m, g)
                .map(|_| g.to_string())
                .into_iter()
                .collect(),
            None => member_groups(state, m)
                .into_iter()
                .map(|(g, _)| g)
                .collect(),
        };
        for g in groups {
            let (before, now) = (suspended_from(state, m, &g), suspended_from(after, m, &g));
            if extends(before, now) {
                out.entry(g).or_default().push(m.name.clone());
            }
        }
    }
    out
}

/// When a group's unconfirmed memberships are suspended under a state,
/// whoever they are (`None`: never): its overdue instant, when the
/// Organization says Suspend.
fn overdue_from(state: &OrgState, group: &str) -> Option<jiff::Timestamp> {
    let g = state.groups.get(group)?;
    if !suspends(state) {
        return None;
    }
    review_state(state, g, jiff::Timestamp::MAX)?.overdue_at
}

/// The groups whose overdue instant the change moves later or removes: it
/// postpones the suspension of every member who is not confirmed, those
/// who join later included (a trusted apply may invite them), so it is a
/// grant of the group whoever its members are now.
pub fn postponed(state: &OrgState, change: &Change) -> BTreeSet<String> {
    let Some(after) = after(state, change) else {
        return BTreeSet::new();
    };
    postponed_in(state, &after)
}

fn postponed_in(state: &OrgState, after: &OrgState) -> BTreeSet<String> {
    state
        .groups
        .values()
        .filter(|g| g.review_every.is_some())
        .filter(|g| extends(overdue_from(state, &g.name), overdue_from(after, &g.name)))
        .map(|g| g.name.clone())
        .collect()
}

/// Edit on one group.
fn edit_on_group(group: &str) -> PrivilegeSet {
    let mut s = PrivilegeSet::new();
    s.add_resource(*catalog::GROUPS, group, Level::Edit);
    s
}

/// The violations of a change that lifts or postpones suspensions: for
/// each group, Edit on it (with what the requester holds now), everything
/// it holds (with `mine`, what NoEscalation counts), and none of the
/// requester's own memberships.
pub fn review_grants(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    requester: &Requester,
    mine: &PrivilegeSet,
) -> Vec<Violation> {
    let Requester::Members {
        members,
        privileges,
        ..
    } = requester
    else {
        return Vec::new();
    };
    let Some(after) = after(state, change) else {
        return Vec::new();
    };
    let mut lifted = lifted_in(state, &after, change);
    for g in postponed_in(state, &after) {
        lifted.entry(g).or_default();
    }
    let mut out = Vec::new();
    for (group, who) in lifted {
        let own: Vec<&String> = who.iter().filter(|m| members.contains(m)).collect();
        if !own.is_empty() {
            out.push(violation(
                Rule::NoEscalation,
                field(change),
                format!(
                    "{} cannot lift or postpone the suspension of their own membership of group '{group}' \
                     (member {}): an overdue access review suspends it, and a member does not certify their own access; \
                     another owner of the group records the review",
                    requester.describe(),
                    own.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        // A review or a cadence already asks Edit on its group
        // (`required_privileges.rs`); the Organization's settings ask it here.
        let org_wide = matches!(change.new, Some(Object::Organization(_)));
        let lacking = privileges.missing(&edit_on_group(&group));
        if org_wide && !lacking.is_empty() {
            out.push(violation(
                Rule::RequiredPrivileges,
                field(change),
                format!(
                    "{} needs Edit on group '{group}' to lift or postpone the suspension of its unconfirmed members{}: \
                     that keeps them in the group, as an invitation does; you lack: {lacking}",
                    requester.describe(),
                    named(&who)
                ),
            ));
        }
        let Some(holds) = grantees.groups.get(&group) else {
            continue;
        };
        let lacking = mine.missing(holds);
        if !lacking.is_empty() {
            out.push(violation(
                Rule::NoEscalation,
                field(change),
                format!(
                    "{} cannot lift or postpone the suspension of the unconfirmed members of group '{group}'{}, which grants privileges they do not hold; missing: {lacking}",
                    requester.describe(),
                    named(&who)
                ),
            ));
        }
    }
    out
}

/// The members named in a denial, if any.
fn named(who: &[String]) -> String {
    if who.is_empty() {
        String::new()
    } else {
        format!(" ({})", who.join(", "))
    }
}

/// The field a denial names.
fn field(change: &Change) -> &'static str {
    match change.new.or(change.old) {
        Some(Object::Group(_)) => "spec.reviewEvery",
        Some(Object::Organization(_)) => "spec.accessReviews",
        Some(Object::AccessReview(_)) if change.new.is_none() => "metadata.name",
        _ => "spec.confirmed",
    }
}
