//! Findings about how long elevated access lasts: the memberships of groups
//! that grant Administrators' privileges, Groups Edit or API keys Edit
//! (docs/time-bound-membership.md, docs/access-reviews.md). The source
//! documents advise granting these "to the smallest possible number of
//! people"; the systems compared with orgaccess (Teleport Access Lists,
//! cloud IAM's time-bound assignments) add "for the shortest possible time".

use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

use super::{Finding, MANAGE_ACCESS, Severity, holds_groups_edit, member};
use crate::builtin::BuiltinGroup;
use crate::catalog;
use crate::effective::{Grantees, group_members, member_effective};
use crate::model::{OrgState, Settings};
use crate::privilege::{Level, PrivilegeSet};

/// Why a group's privileges are elevated, or `None`: the group is (or
/// grants everything) Administrators, or grants Groups Edit or API keys Edit
/// domain-wide. `admins` is what Administrators grants.
pub fn elevation(
    group: &str,
    privileges: &PrivilegeSet,
    admins: Option<&PrivilegeSet>,
) -> Option<&'static str> {
    if group == BuiltinGroup::Administrators.object_name()
        || admins.is_some_and(|a| !a.is_empty() && privileges.covers(a))
    {
        Some("Administrators' privileges")
    } else if holds_groups_edit(privileges) {
        Some("Groups Edit")
    } else if privileges
        .get(*catalog::API_KEYS)
        .is_some_and(|g| g.level >= Level::Edit)
    {
        Some("API keys Edit")
    } else {
        None
    }
}

/// A member whose membership is long-lived, and its end (`None`: never).
type LongLived<'a> = (&'a str, Option<Timestamp>);

/// `long-lived-elevated-membership`: per elevated group, the memberships
/// that count now and do not end within the settings' days (or never end).
pub(super) fn findings(
    state: &OrgState,
    grantees: &Grantees,
    settings: &Settings,
    now: Timestamp,
    out: &mut Vec<Finding>,
) {
    let admins = grantees
        .groups
        .get(BuiltinGroup::Administrators.object_name());
    let horizon = now
        .saturating_add(SignedDuration::from_hours(
            settings.elevated_membership_max_days.saturating_mul(24),
        ))
        .unwrap_or(Timestamp::MAX);
    let mut long: std::collections::BTreeMap<&str, (&str, Vec<LongLived>)> = Default::default();
    let elevated: std::collections::BTreeMap<&str, &str> = grantees
        .groups
        .iter()
        .filter_map(|(g, p)| Some((g.as_str(), elevation(g, p, admins)?)))
        .collect();
    if elevated.is_empty() {
        return;
    }
    without_review(state, grantees, &elevated, now, out);
    for m in state.members.values() {
        let eff = member_effective(state, grantees, m, now);
        for ms in eff.memberships.iter().filter(|ms| ms.active) {
            let Some((group, why)) = elevated.get_key_value(ms.group.as_str()) else {
                continue;
            };
            if ms.ends_at.is_none_or(|e| e > horizon) {
                long.entry(group)
                    .or_insert((why, Vec::new()))
                    .1
                    .push((m.name.as_str(), ms.ends_at));
            }
        }
    }
    for (group, (why, members)) in long {
        let listed: Vec<String> = members
            .iter()
            .map(|(m, end)| match end {
                None => format!("{m} (no end)"),
                Some(e) => format!("{m} (ends {e})"),
            })
            .collect();
        let mut objects: Vec<String> = members.iter().map(|(m, _)| member(m)).collect();
        objects.push(format!("Group/{group}"));
        objects.sort();
        out.push(Finding {
            id: "long-lived-elevated-membership",
            severity: Severity::Info,
            objects,
            message: format!(
                "{} membership(s) of {group}, which grants {why}, do not end within {} days: {}",
                members.len(),
                settings.elevated_membership_max_days,
                listed.join(", ")
            ),
            practice: "grant elevated privileges to as few people as possible, for as short a time as the task needs",
            source: MANAGE_ACCESS,
            fix: format!(
                "set an end on these memberships (Member spec.until or spec.groupUntil.{group}), or review the group on a cadence"
            ),
        });
    }
}

/// `elevated-group-without-review`: an elevated group with members that
/// declares no review cadence (`spec.reviewEvery`) or no owner to review it
/// (docs/access-reviews.md).
fn without_review(
    state: &OrgState,
    grantees: &Grantees,
    elevated: &std::collections::BTreeMap<&str, &str>,
    now: Timestamp,
    out: &mut Vec<Finding>,
) {
    for (group, why) in elevated {
        let Some(g) = state.groups.get(*group) else {
            continue;
        };
        let missing = match (g.review_every.is_some(), g.owners.is_empty()) {
            (true, false) => continue,
            (false, true) => "no review cadence (spec.reviewEvery) and no owners (spec.owners)",
            (false, false) => "no review cadence (spec.reviewEvery)",
            (true, true) => "no owners (spec.owners) to review it",
        };
        let (active, _) = group_members(
            state,
            grantees,
            state.members.values().map(Arc::as_ref),
            group,
            now,
        );
        if active.is_empty() {
            continue;
        }
        out.push(Finding {
            id: "elevated-group-without-review",
            severity: Severity::Info,
            objects: vec![format!("Group/{group}")],
            message: format!(
                "group {group} grants {why} to {} member(s) and has {missing}: nobody is asked to confirm that access is still needed",
                active.len()
            ),
            practice: "grant elevated privileges to as few people as possible, and confirm on a cadence that they still need them",
            source: MANAGE_ACCESS,
            fix: format!(
                "set spec.owners and spec.reviewEvery (for example P90D) on {group}; its owners record reviews as AccessReview objects"
            ),
        });
    }
}

#[cfg(test)]
mod tests;
